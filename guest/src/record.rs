//! The lock object's JSON, compatible with Go s3lect, and the health endpoint's reply.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Lock objects larger than this are refused as corrupt rather than parsed.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Go's zero `time.Time`, which s3lect writes for a resigned leader.
pub const ZERO_TIME: OffsetDateTime = time::macros::datetime!(0001-01-01 00:00:00 UTC);

/// The lock object: Go s3lect's `LeaderRecord` plus our `term` fencing token and a per-write
/// `nonce`. Unknown fields are ignored; a missing `term` (Go s3lect) reads as 0.
///
/// Why the nonce: S3 etags of single-part objects are the MD5 of the content, so writing the
/// same bytes twice leaves the etag unchanged and an If-Match on it still succeeds. The
/// election reasons "etag unchanged ⇒ nobody wrote"; a random nonce in every write keeps that
/// true even for records that would otherwise be identical (two resignations of one term).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderRecord {
    #[serde(rename = "leaderID", default, skip_serializing_if = "String::is_empty")]
    pub leader_id: String,
    #[serde(rename = "leaderAddr", default, skip_serializing_if = "String::is_empty")]
    pub leader_addr: String,
    #[serde(rename = "lastUpdated", with = "rfc3339", default = "zero_time")]
    pub last_updated: OffsetDateTime,
    #[serde(default)]
    pub term: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
    /// Set by `s3lect resign` (a revocation): the server whose leadership was revoked. It
    /// waits out the record twice as long as others, so another node takes over if one is
    /// present. Go s3lect ignores the field.
    #[serde(rename = "revokedID", default, skip_serializing_if = "String::is_empty")]
    pub revoked_id: String,
    /// SHA-256 (hex) of the leader's health-endpoint certificate: what followers pin when they
    /// probe it (zero-config peer mode). Go s3lect ignores the field.
    #[serde(rename = "peerCertSHA256", default, skip_serializing_if = "String::is_empty")]
    pub peer_cert_sha256: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn zero_time() -> OffsetDateTime {
    ZERO_TIME
}

/// Why a lock object could not be read as a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RecordError {
    TooLarge(usize),
    Invalid(String),
}

impl std::error::Error for RecordError {}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Storage may stop reading past the limit: `n` is what was read, at least.
            RecordError::TooLarge(n) => {
                write!(f, "lock object is over the {MAX_RECORD_BYTES}-byte limit (at least {n} bytes)")
            }
            RecordError::Invalid(e) => write!(f, "lock object is not a leader record: {e}"),
        }
    }
}

impl LeaderRecord {
    pub fn leading(leader_id: &str, leader_addr: &str, now_unix_ns: i128, term: u64) -> Self {
        LeaderRecord {
            leader_id: leader_id.to_string(),
            leader_addr: leader_addr.to_string(),
            last_updated: from_unix_ns(now_unix_ns),
            term,
            nonce: 0,
            revoked_id: String::new(),
            peer_cert_sha256: String::new(),
        }
    }

    /// The record `s3lect resign` writes over `revoked`'s: nobody leads, but — unlike a
    /// resignation — it carries a real timestamp, so it stands a leader timeout like any record.
    pub fn revocation(revoked: &str, now_unix_ns: i128, term: u64) -> Self {
        LeaderRecord { revoked_id: revoked.to_string(), ..LeaderRecord::leading("", "", now_unix_ns, term) }
    }

    /// The record a leader writes when it gives up: zero time, no leader, same term.
    pub fn resigned(term: u64) -> Self {
        LeaderRecord {
            leader_id: String::new(),
            leader_addr: String::new(),
            last_updated: ZERO_TIME,
            term,
            nonce: 0,
            revoked_id: String::new(),
            peer_cert_sha256: String::new(),
        }
    }

    /// The certificate pin to probe this record's leader with, if it published a well-formed one.
    pub fn probe_pin(&self) -> Option<&str> {
        Some(self.peer_cert_sha256.as_str()).filter(|p| crate::config::is_sha256_hex(p))
    }

    /// Go s3lect marks resignation with the zero time: anyone may take over at once. (A record
    /// naming nobody with a real timestamp — a revocation by `s3lect resign` — is not one: it
    /// must stand unchanged for a leader-timeout like any other record.)
    pub fn is_resigned(&self) -> bool {
        self.last_updated == ZERO_TIME
    }

    pub fn parse(data: &[u8]) -> Result<Self, RecordError> {
        let r: LeaderRecord = parse_object(data)?;
        // The next leader would write term + 1: a record at the maximum could only wrap the
        // fencing token back to 0. No writer gets there by counting.
        if r.term == u64::MAX {
            return Err(RecordError::Invalid("term is at its maximum; the record is corrupt".into()));
        }
        Ok(r)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Room for the longest common record (a 64-digit certificate pin, a host name) at once,
        // rather than growing by doubling from serde_json's 128 bytes.
        let mut out = Vec::with_capacity(320);
        serde_json::to_writer(&mut out, self).expect("a record always serialises");
        out
    }

    /// `leaderAddr` as a probe target: `host:port` and nothing else (no path, query, user info
    /// or scheme), so a record cannot steer followers' requests anywhere but a peer's endpoint.
    pub fn probe_addr(&self) -> Option<&str> {
        let addr = self.leader_addr.as_str();
        let (host, port) = addr.rsplit_once(':')?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => !host.is_empty() && host.len() <= 253 && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
        };
        (port_ok && host_ok).then_some(addr)
    }

    pub fn last_updated_unix_ns(&self) -> i128 {
        self.last_updated.unix_timestamp_nanos()
    }
}

/// Size-checked JSON object parsing. serde would also accept a JSON array for a struct, which
/// no writer of ours or Go's produces, so anything but an object is refused.
fn parse_object<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, RecordError> {
    if data.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge(data.len()));
    }
    if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(RecordError::Invalid("expected a JSON object".into()));
    }
    serde_json::from_slice(data).map_err(|e| RecordError::Invalid(e.to_string()))
}

/// Text from a lock object or a peer, made safe for a log line or a terminal: control
/// characters (newlines that would forge log lines, ANSI escapes) are shown escaped.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect())
}

/// Converts unix nanoseconds to a timestamp, clamping absurd values instead of failing.
pub fn from_unix_ns(ns: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap_or(ZERO_TIME)
}

/// RFC 3339 with nanoseconds, as Go's `time.Time` marshals (UTC, trailing zeros trimmed).
mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; MAX_LEN];
        let text = format(*t, &mut buf).ok_or_else(|| serde::ser::Error::custom(format!("{t} is outside the years RFC 3339 can write")))?;
        s.serialize_str(text)
    }

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, the longest text [`format`] writes.
    pub const MAX_LEN: usize = 30;

    /// The text `time`'s `Rfc3339` formats (UTC, the fraction's trailing zeros trimmed, no
    /// fraction for whole seconds), written into `buf` in one pass: every renewal writes a
    /// timestamp, and inside the component `time`'s formatter costs a copy call per piece.
    /// None outside years 0000–9999, which RFC 3339 cannot write.
    pub fn format(t: OffsetDateTime, buf: &mut [u8; MAX_LEN]) -> Option<&str> {
        /// `value`'s last `width` decimal digits at `buf[*at..]`.
        fn digits(buf: &mut [u8], at: &mut usize, mut value: u32, width: usize) {
            for d in buf[*at..*at + width].iter_mut().rev() {
                *d = b'0' + (value % 10) as u8;
                value /= 10;
            }
            *at += width;
        }
        let t = t.to_offset(time::UtcOffset::UTC);
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut at = 0;
        let pieces = [
            (year, 4, b'-'),
            (u32::from(u8::from(t.month())), 2, b'-'),
            (u32::from(t.day()), 2, b'T'),
            (u32::from(t.hour()), 2, b':'),
            (u32::from(t.minute()), 2, b':'),
            (u32::from(t.second()), 2, b'.'),
        ];
        for (value, width, then) in pieces {
            digits(buf, &mut at, value, width);
            buf[at] = then;
            at += 1;
        }
        let nanos = t.nanosecond();
        if nanos == 0 {
            at -= 1; // no fraction: the '.' goes
        } else {
            digits(buf, &mut at, nanos, 9);
            while buf[at - 1] == b'0' {
                at -= 1;
            }
        }
        buf[at] = b'Z';
        std::str::from_utf8(&buf[..=at]).ok()
    }

    /// Kept in UTC and within the years RFC 3339 can write (0000–9999), so that whatever
    /// parses can be written again: an edge-of-range offset such as `0000-01-01T00:00:00+00:01`
    /// would otherwise be a year −1 instant that cannot be serialised.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        let t =
            OffsetDateTime::parse(&text, &Rfc3339).map_err(|e| D::Error::custom(format!("lastUpdated {text:?} is not RFC 3339: {e}")))?;
        t.checked_to_offset(time::UtcOffset::UTC)
            .filter(|u| (0..=9999).contains(&u.year()))
            .ok_or_else(|| D::Error::custom(format!("lastUpdated {text:?} is out of range")))
    }
}

/// What a leader's health endpoint serves: its record, the etag of its last completed renewal,
/// and how much of its lease remains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReply {
    #[serde(flatten)]
    pub record: LeaderRecord,
    pub etag: String,
    #[serde(rename = "leaseRemainingMs")]
    pub lease_remaining_ms: u64,
}

impl HealthReply {
    pub fn parse(data: &[u8]) -> Result<Self, RecordError> {
        parse_object(data)
    }

    pub fn to_json(&self) -> Vec<u8> {
        HealthReply::json_with_record(&self.record.to_json(), &self.etag, self.lease_remaining_ms)
    }

    /// The reply for a record already serialised (`record_json`, a record's `to_json`): its
    /// JSON with two members added, the same text `#[serde(flatten)]` gives.
    pub fn json_with_record(record_json: &[u8], etag: &str, lease_remaining_ms: u64) -> Vec<u8> {
        // A record is never `{}`: it always has lastUpdated and term.
        debug_assert!(record_json.len() > 2 && record_json.ends_with(b"}"));
        let mut out = Vec::with_capacity(record_json.len() + etag.len() + 48);
        out.extend_from_slice(&record_json[..record_json.len() - 1]);
        out.extend_from_slice(b",\"etag\":");
        serde_json::to_writer(&mut out, etag).expect("a string always serialises");
        out.extend_from_slice(b",\"leaseRemainingMs\":");
        serde_json::to_writer(&mut out, &lease_remaining_ms).expect("a number always serialises");
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_s3lect_records() {
        let go = br#"{"leaderID":"node-1","leaderAddr":"10.0.0.1:8993","lastUpdated":"2025-06-01T12:34:56.123456789Z"}"#;
        let r = LeaderRecord::parse(go).unwrap();
        assert_eq!((r.leader_id.as_str(), r.term), ("node-1", 0));
        assert_eq!(r.last_updated_unix_ns() % 1_000_000_000, 123_456_789);
        assert!(!r.is_resigned());
        let resigned = br#"{"lastUpdated":"0001-01-01T00:00:00Z"}"#;
        assert!(LeaderRecord::parse(resigned).unwrap().is_resigned());
        let offset = br#"{"leaderID":"n","lastUpdated":"2025-06-01T14:34:56+02:00","extra":[1,2]}"#;
        assert_eq!(LeaderRecord::parse(offset).unwrap().last_updated, time::macros::datetime!(2025-06-01 12:34:56 UTC));
    }

    #[test]
    fn writes_what_go_reads() {
        let r = LeaderRecord { nonce: 255, ..LeaderRecord::leading("b", "h:1", 1_700_000_000_500_000_000, 7) };
        let text = String::from_utf8(r.to_json()).unwrap();
        assert_eq!(text, r#"{"leaderID":"b","leaderAddr":"h:1","lastUpdated":"2023-11-14T22:13:20.5Z","term":7,"nonce":255}"#);
        let z = String::from_utf8(LeaderRecord::resigned(7).to_json()).unwrap();
        assert_eq!(z, r#"{"lastUpdated":"0001-01-01T00:00:00Z","term":7}"#);
        assert_eq!(LeaderRecord::parse(text.as_bytes()).unwrap(), r);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert_eq!(LeaderRecord::parse(&vec![b' '; MAX_RECORD_BYTES + 1]), Err(RecordError::TooLarge(MAX_RECORD_BYTES + 1)));
        let e = LeaderRecord::parse(br#"{"leaderID":"a","lastUpdated":"yesterday"}"#).unwrap_err();
        assert!(e.to_string().contains("not RFC 3339"), "{e}");
        assert!(matches!(LeaderRecord::parse(b"\xff\x00garbage"), Err(RecordError::Invalid(_))));
        assert!(matches!(LeaderRecord::parse(b"[]"), Err(RecordError::Invalid(_))));
    }

    /// The one-pass formatter writes exactly what `time`'s RFC 3339 formatter writes, across
    /// the years both allow, whole seconds and every fraction length; both refuse the rest.
    #[test]
    fn timestamps_are_formatted_as_time_formats_them() {
        let mut rng = fastrand::Rng::with_seed(7);
        let max = time::macros::datetime!(9999-12-31 23:59:59.999_999_999 UTC).unix_timestamp_nanos();
        let min = time::macros::datetime!(0000-01-01 00:00:00 UTC).unix_timestamp_nanos();
        let mut instants = vec![min, max, 0, 1, 1_700_000_000_500_000_000, ZERO_TIME.unix_timestamp_nanos()];
        for _ in 0..20_000 {
            let ns = rng.i128(min..=max);
            // Every fraction length, whole seconds included.
            instants.push(ns - ns.rem_euclid(10i128.pow(rng.u32(0..=9))));
        }
        let mut buf = [0; rfc3339::MAX_LEN];
        for ns in instants {
            let t = OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap();
            assert_eq!(rfc3339::format(t, &mut buf), Some(t.format(&Rfc3339).unwrap().as_str()), "{ns}");
        }
        let before_year_0 = OffsetDateTime::from_unix_timestamp_nanos(min - 1).unwrap();
        assert!(before_year_0.format(&Rfc3339).is_err());
        assert_eq!(rfc3339::format(before_year_0, &mut buf), None);
        let offset = time::macros::datetime!(2025-06-01 14:34:56.25 +02:00);
        assert_eq!(rfc3339::format(offset, &mut buf), Some("2025-06-01T12:34:56.25Z"));
    }

    /// `to_json` splices the record's JSON; the result is the text serde's flattening gives.
    #[test]
    fn health_reply_json_is_the_flattened_struct() {
        let mut r = LeaderRecord {
            nonce: 9,
            peer_cert_sha256: "ab".repeat(32),
            ..LeaderRecord::leading("a\"b", "x:1", 1_700_000_000_500_000_000, 3)
        };
        for _ in 0..2 {
            let h = HealthReply { record: r.clone(), etag: "\"e\\1\"".into(), lease_remaining_ms: u64::MAX };
            assert_eq!(String::from_utf8(h.to_json()).unwrap(), serde_json::to_string(&h).unwrap());
            r = LeaderRecord::resigned(4);
        }
    }

    #[test]
    fn health_reply_round_trips() {
        let h = HealthReply { record: LeaderRecord::leading("a", "x:1", 0, 3), etag: "\"e1\"".into(), lease_remaining_ms: 900 };
        let json = h.to_json();
        assert_eq!(HealthReply::parse(&json).unwrap(), h);
        assert!(String::from_utf8(json).unwrap().contains(r#""leaseRemainingMs":900"#));
    }
}
