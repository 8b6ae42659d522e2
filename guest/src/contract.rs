//! The storage contract, its sequential part: what the election needs from any storage with
//! conditional writes. One suite, driven by every runner — the test kit for each Rust `Storage`
//! (in-memory, files, S3 against SeaweedFS and Ceph RGW) and `components/storage-contract` for
//! a storage *component* (wasm, composed with it). Races need concurrency: the test kit adds
//! them. Keys are written under `prefix`; use a fresh one per run.

use crate::io::StorageError;

/// The two operations the election uses (the WIT `storage` interface's shape).
pub trait ContractStorage {
    /// The object's bytes and etag.
    fn get(&mut self, key: &str) -> Result<(Vec<u8>, String), StorageError>;
    /// Writes only if the etag is `etag` (`None`: only if absent); returns the new etag.
    fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>) -> Result<String, StorageError>;
}

fn expect<T: std::fmt::Debug>(what: &str, got: T, ok: bool) -> Result<(), String> {
    if ok { Ok(()) } else { Err(format!("{what}: got {got:?}")) }
}

/// Runs the sequential checks; the error names the first one that failed and what was seen.
pub fn sequential_contract(s: &mut impl ContractStorage, prefix: &str) -> Result<(), String> {
    let lock = format!("{prefix}/contract.json");
    let got = s.get(&lock);
    expect("a missing object reads as not-found", &got, got == Err(StorageError::NotFound))?;

    // Create only if absent.
    let e1 = s.put(&lock, b"one", None).map_err(|e| format!("create on absence: {e}"))?;
    let got = s.get(&lock);
    expect("a read returns the bytes and the etag the write returned", &got, got == Ok((b"one".to_vec(), e1.clone())))?;
    let got = s.put(&lock, b"x", None);
    expect("a second create is refused (412)", &got, got == Err(StorageError::PreconditionFailed))?;

    // Replace only if unchanged.
    let e2 = s.put(&lock, b"two", Some(&e1)).map_err(|e| format!("replace on the current etag: {e}"))?;
    expect("a replacement has a new etag", &e2, e2 != e1)?;
    let got = s.put(&lock, b"x", Some(&e1));
    expect("a write on a stale etag is refused (412)", &got, got == Err(StorageError::PreconditionFailed))?;
    let got = s.get(&lock);
    expect("refused writes changed nothing", &got, got == Ok((b"two".to_vec(), e2.clone())))?;

    // A conditional replace never creates.
    let missing = format!("{prefix}/never-created.json");
    let got = s.put(&missing, b"x", Some(&e2));
    expect("If-Match on a missing key is refused", &got, matches!(got, Err(StorageError::PreconditionFailed | StorageError::NotFound)))?;
    let got = s.get(&missing);
    expect("nothing was created", &got, got == Err(StorageError::NotFound))?;
    Ok(())
}
