//! Property tests of what S3 answers feed the election: any status, ETag header and body
//! (XML error documents, truncated, hostile) maps to an answer or a storage error, never a
//! panic, and an error message stays bounded.

use proptest::prelude::*;
use s3lect_s3::{Bucket, S3Config, StorageError};
use std::time::Duration;

fn bucket() -> Bucket {
    Bucket::new(S3Config {
        bucket: "b".into(),
        region: "us-east-1".into(),
        endpoint: Some("http://127.0.0.1:9".into()),
        path_style: true,
        access_key_id: "k".into(),
        secret_access_key: "s".into(),
        session_token: None,
        ca_cert_pem: None,
        request_timeout: Duration::from_secs(1),
    })
    .unwrap()
}

fn xmlish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        ("[A-Za-z]{0,30}", ".{0,200}")
            .prop_map(|(code, msg)| format!("<Error><Code>{code}</Code><Message>{msg}</Message></Error>").into_bytes()),
        ".{0,300}".prop_map(|s| format!("<?xml version=\"1.0\"?><Error>{s}").into_bytes()),
    ]
}

proptest! {
    #[test]
    fn any_answer_maps_without_panicking(status in 100u16..1000, etag in proptest::option::of(".{0,80}"), body in xmlish()) {
        let b = bucket();
        let _ = b.got(status, etag.as_deref(), body.clone());
        let _ = b.put_answer(status, etag.as_deref(), &body);
        let _ = b.deleted(status, &body);
        match b.classify(status, &body) {
            StorageError::Unavailable(m) | StorageError::Denied(m) | StorageError::Invalid(m) => prop_assert!(m.len() < 2_000),
            _ => {}
        }
    }

    #[test]
    fn any_key_and_etag_sign_or_are_refused(key in ".{1,200}", etag in ".{0,100}") {
        let b = bucket();
        let now = std::time::SystemTime::now();
        let _ = b.get(&key, now);
        let _ = b.put_if_match(&key, b"{}", Some(&etag), now);
    }
}
