//! Property tests ("fuzzing" on stable) of every parser in the core that sees bytes from
//! outside: the lock record (anyone with write access to the bucket), the health reply (a peer),
//! and carried state (a state file or object). None may panic; whatever parses must be written
//! back and parse to the same value; restored state must always export again. The test command
//! runs 256 cases each (PROPTEST_CASES raises it: the README gives a longer run).

use proptest::prelude::*;
use s3lect_guest::{Clock, Config, Elector, HealthReply, LeaderRecord};

/// JSON-shaped input near the record's grammar: real keys, hostile values.
fn recordish() -> impl Strategy<Value = Vec<u8>> {
    let timestamp = prop_oneof![
        Just("0001-01-01T00:00:00Z".to_string()),
        Just("0000-01-01T00:00:00+00:01".to_string()),
        Just("9999-12-31T23:59:59-23:59".to_string()),
        Just("9999-12-31T23:59:59.999999999Z".to_string()),
        "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,12})?(Z|[+-][0-2][0-9]:[0-5][0-9])",
        ".{0,40}",
    ];
    let term = prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(0u64), any::<u64>()];
    (".{0,30}", ".{0,30}", timestamp, term, any::<u64>(), any::<bool>()).prop_map(|(id, addr, ts, term, nonce, extra)| {
        let mut v = serde_json::json!({"leaderID": id, "leaderAddr": addr, "lastUpdated": ts, "term": term, "nonce": nonce});
        if extra {
            v["etag"] = serde_json::json!("\"x\"");
            v["leaseRemainingMs"] = serde_json::json!(nonce % 100_000);
        }
        serde_json::to_vec(&v).unwrap()
    })
}

fn clock() -> Clock {
    Clock { mono_ns: 5_000_000_000_000, wall_ns: 1_800_000_000_000_000_000 }
}

fn config() -> Config {
    Config { lockfile_path: "fuzz/leader.json".into(), server_id: "f".into(), ..Config::default() }
}

proptest! {
    #[test]
    fn records_never_panic_and_round_trip(data in prop_oneof![recordish(), proptest::collection::vec(any::<u8>(), 0..300)]) {
        if let Ok(r) = LeaderRecord::parse(&data) {
            let again = LeaderRecord::parse(&r.to_json()).expect("what parses is written back parseable");
            prop_assert_eq!(again, r);
        }
        if let Ok(h) = HealthReply::parse(&data) {
            prop_assert_eq!(HealthReply::parse(&h.to_json()).expect("round trip"), h);
        }
    }

    #[test]
    fn an_elector_fed_any_record_exports_and_restores(data in recordish(), etag in ".{0,20}") {
        let mut e = Elector::new(config(), clock()).unwrap();
        let s3lect_guest::Action::Get { ticket, .. } = e.begin_step(clock()) else { panic!("a first step reads") };
        let _ = e.complete(clock(), s3lect_guest::Completion::Got(ticket, Ok(s3lect_guest::Object { data, etag, server_clock: None })));
        let state = e.export_state(clock());
        Elector::restore(config(), &state, clock()).expect("exported state restores");
    }

    #[test]
    fn carried_state_of_any_shape_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), text in ".{0,400}") {
        let _ = Elector::restore(config(), &data, clock());
        let _ = Elector::restore(config(), text.as_bytes(), clock());
        // A well-formed state with hostile values.
        let forged = format!(
            r#"{{"version":1,"server_id":"f","lockfile_path":"fuzz/leader.json","mono_ns":{},"wall_ns":{},"lease":null,"observation":{{"etag":{:?},"first_seen":{},"record":null,"error":"x","changed":true}},"known_term":{},"backoff_until":{},"fails":4294967295,"last_error":null,"leader_last_seen":null,"stopped":false}}"#,
            data.len() as u64 * 1_000_000_007,
            -(data.len() as i128),
            text,
            u64::MAX,
            u64::MAX,
            u64::MAX,
        );
        if let Ok(mut e) = Elector::restore(config(), forged.as_bytes(), clock()) {
            let _ = e.begin_step(clock());
            let _ = e.export_state(clock());
        }
    }
}
