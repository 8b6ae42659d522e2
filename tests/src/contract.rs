//! The storage contract for every Rust `Storage`: the sequential checks every runner shares
//! (`s3lect_guest::contract`, which `components/storage-contract` runs against storage
//! components), then races, which need concurrency. Run by `host/tests/storage_contract.rs` for
//! the in-process stores and `cli/tests/servers.rs` for S3 against SeaweedFS and Ceph RGW. Each
//! storage is tested as the elector uses it: after the start-up conformance check has adapted
//! it (`conforming_storage`). Needs a multi-threaded runtime.

use s3lect::storage::{DEFAULT_STARTUP_BUDGET, conforming_storage};
use s3lect::{Condition, Storage, StorageError};
use s3lect_guest::contract::{ContractStorage, sequential_contract};
use std::sync::Arc;

/// Writers in each race; exactly one must win.
const RACERS: usize = 6;

/// An async `Storage` driven by the sync suite (on a multi-threaded runtime).
struct Blocking(Arc<dyn Storage>);

impl ContractStorage for Blocking {
    fn get(&mut self, key: &str) -> Result<(Vec<u8>, String), StorageError> {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(self.0.get(key)))
    }
    fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>) -> Result<String, StorageError> {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(self.0.put_if_match(key, data, Condition::from_etag(etag)))
        })
    }
}

pub async fn storage_contract(storage: Arc<dyn Storage>, prefix: &str) {
    let lock = format!("{prefix}/contract.json");
    let (s, _) = conforming_storage(storage, &lock, DEFAULT_STARTUP_BUDGET).await.expect("passes the start-up conformance check");
    sequential_contract(&mut Blocking(s.clone()), prefix).unwrap_or_else(|e| panic!("storage contract: {e}"));

    // Races: of writers on one condition, exactly one wins and the object holds its bytes.
    let race = format!("{prefix}/race.json");
    for round in 0..2 {
        let current = match round {
            0 => None,
            _ => Some(s.get(&race).await.expect("the first race left an object").1),
        };
        let writes = (0..RACERS).map(|i| {
            let (s, race, current) = (s.clone(), race.clone(), current.clone());
            tokio::spawn(async move {
                let data = format!("round {round} writer {i}").into_bytes();
                let r = s.put_if_match(&race, &data, Condition::from_etag(current.as_deref())).await;
                (data, r)
            })
        });
        let mut winners = Vec::new();
        for w in writes.collect::<Vec<_>>() {
            let (data, r) = w.await.unwrap();
            match r {
                Ok(etag) => winners.push((data, etag)),
                Err(StorageError::PreconditionFailed | StorageError::Conflict) => {}
                // Ceph RGW 16 answers some racing losers 500. The elector keeps such a write as
                // unanswered and settles it by reading; the read below shows it did not apply.
                Err(StorageError::Unavailable(_)) => {}
                Err(e) => panic!("a racing write failed otherwise: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner of {RACERS}, got {}", winners.len());
        assert_eq!(s.get(&race).await, Ok(winners.pop().unwrap()), "round {round}: the object holds the winner's write");
    }
}
