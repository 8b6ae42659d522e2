use super::*;
use std::time::{Duration, UNIX_EPOCH};

fn cfg(endpoint: Option<&str>, path_style: bool) -> S3Config {
    S3Config {
        bucket: "examplebucket".into(),
        region: "us-east-1".into(),
        endpoint: endpoint.map(str::to_string),
        path_style,
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
        ca_cert_pem: None,
        request_timeout: Duration::from_secs(5),
    }
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// AWS's published SigV4 example ("GET Object" in the S3 API reference, 24 May 2013).
#[test]
fn signature_matches_the_aws_documented_get_object_example() {
    let b = Bucket::new(cfg(Some("https://s3.amazonaws.com"), false)).unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24T00:00:00Z
    let r = b.signed("GET", "test.txt", vec![("range".into(), "bytes=0-9".into())], Vec::new(), at).unwrap();
    assert_eq!(r.url(), "https://examplebucket.s3.amazonaws.com/test.txt");
    assert_eq!(
        header(&r, "authorization").unwrap(),
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

#[test]
fn path_style_addresses_and_key_encoding() {
    let b = Bucket::new(cfg(Some("http://127.0.0.1:8333/"), true)).unwrap();
    let r = b.put_if_match("group/with space+é.json", b"{}", None, SystemTime::now()).unwrap();
    assert_eq!(r.url(), "http://127.0.0.1:8333/examplebucket/group/with%20space%2B%C3%A9.json");
    assert_eq!(header(&r, "if-none-match"), Some("*"));
    assert_eq!(header(&r, "host"), Some("127.0.0.1:8333"));
    assert_eq!(r.body, b"{}");
    let r = b.put_if_match("k", b"x", Some("\"abc\""), SystemTime::now()).unwrap();
    assert_eq!(header(&r, "if-match"), Some("\"abc\""), "etag sent back verbatim, quotes included");
    assert!(header(&r, "x-amz-content-sha256").is_some());
}

#[test]
fn bad_endpoints_are_named() {
    for bad in ["ftp://host", "not a url", "http://", "http://u@host"] {
        let e = Bucket::new(cfg(Some(bad), true)).unwrap_err();
        assert!(e.contains(bad), "{e}");
    }
    let mut empty = cfg(None, false);
    empty.bucket.clear();
    assert!(Bucket::new(empty).unwrap_err().contains("bucket"));
}

#[test]
fn answers_map_to_election_errors() {
    let b = Bucket::new(cfg(None, false)).unwrap();
    let xml = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>").into_bytes();
    assert_eq!(b.got(404, None, xml("NoSuchKey")), Err(StorageError::NotFound));
    assert!(matches!(b.got(404, None, xml("NoSuchBucket")), Err(StorageError::Invalid(m)) if m.contains("examplebucket")));
    assert_eq!(b.put_answer(412, None, b""), Err(StorageError::PreconditionFailed));
    assert_eq!(b.put_answer(409, None, b""), Err(StorageError::Conflict));
    assert!(
        matches!(b.put_answer(403, None, &xml("AccessDenied")), Err(StorageError::Denied(m)) if m == "AccessDenied: m (HTTP 403 Forbidden)")
    );
    assert!(matches!(b.put_answer(503, None, b""), Err(StorageError::Unavailable(_))));
    assert!(matches!(b.put_answer(200, None, b""), Err(StorageError::Invalid(m)) if m.contains("ETag")));
    assert_eq!(b.put_answer(200, Some("\"e\""), b""), Ok("\"e\"".into()));
    assert_eq!(b.deleted(404, b""), Ok(()));
}

/// Temporary credentials (what serverless platforms inject): the session token is sent and
/// signed, and rotated credentials sign the same address.
#[test]
fn a_session_token_is_sent_and_signed() {
    let base = cfg(None, false);
    let temp = base.with_credentials("ASIAEXAMPLE", "secret", Some("the-token"));
    let r = Bucket::new(temp).unwrap().get("k", UNIX_EPOCH + Duration::from_secs(1_700_000_000)).unwrap();
    assert_eq!(header(&r, "x-amz-security-token"), Some("the-token"));
    let auth = header(&r, "authorization").unwrap();
    assert!(auth.contains("Credential=ASIAEXAMPLE/") && auth.contains("x-amz-security-token"), "{auth}");
    let fixed = Bucket::new(base).unwrap().get("k", UNIX_EPOCH).unwrap();
    assert_eq!(header(&fixed, "x-amz-security-token"), None);
    assert_eq!(fixed.url(), r.url());
}

#[test]
fn etag_forms() {
    assert_eq!(EtagForm::AsReturned.apply("\"abc\""), "\"abc\"");
    assert_eq!(EtagForm::Unquoted.apply("\"abc\""), "abc");
    assert_eq!(EtagForm::Unquoted.apply("abc"), "abc");
    assert_eq!(unquoted("W/\"weak\""), "W/\"weak\"", "weak etags are left alone");
    assert_eq!("unquoted".parse::<EtagForm>(), Ok(EtagForm::Unquoted));
    assert!("quoted".parse::<EtagForm>().unwrap_err().contains("as-returned"));
}

#[test]
fn debug_output_carries_no_secret() {
    let c = cfg(None, false).with_credentials("AKIDEXAMPLE", "the-secret-key", Some("the-session-token"));
    let b = Bucket::new(c.clone()).unwrap();
    let r = b.get("k", UNIX_EPOCH).unwrap();
    for text in [format!("{c:?}"), format!("{b:?}"), format!("{r:?}")] {
        assert!(!text.contains("the-secret-key") && !text.contains("the-session-token"), "{text}");
        assert!(text.contains("AKIDEXAMPLE"), "the key id helps debugging and is no secret: {text}");
    }
}

#[test]
fn server_clock_needs_both_dates() {
    let lm = Some("Sun, 29 Nov 2026 01:00:00 GMT");
    let date = Some("Sun, 29 Nov 2026 01:00:17 GMT");
    let c = server_clock(lm, date).expect("both valid");
    assert_eq!(c.answered_unix_s - c.written_unix_s, 17);
    assert_eq!(c.age_ms(), 17_000);
    assert_eq!(server_clock(lm, None), None);
    assert_eq!(server_clock(None, date), None);
    assert_eq!(server_clock(Some("yesterday"), date), None, "an unreadable date is no clock");
}
