//! Start-up check that the server really enforces conditional writes. A server that silently
//! ignores If-None-Match / If-Match would let every elector win: refuse to run on it.

use super::{Storage, StorageError};

/// Writes a scratch object next to `lock_key`, checks that a second create and a stale
/// If-Match are both refused, then deletes it.
pub async fn check_conditional_writes(storage: &dyn Storage, lock_key: &str) -> Result<(), String> {
    // Read first: a wrong bucket, region or credentials is named before anything is written
    // (some servers would create a missing bucket on PUT).
    match storage.get(lock_key).await {
        Ok(_) | Err(StorageError::NotFound) => {}
        Err(e) => return Err(format!("cannot read the lock object {lock_key}: {e}")),
    }
    let key = format!("{lock_key}.s3lect-conformance-{:016x}", fastrand::u64(..));
    let created = storage
        .put_if_match(&key, b"{}", None)
        .await
        .map_err(|e| format!("conformance check: creating scratch object {key}: {e}"))?;
    let verdict = async {
        match storage.put_if_match(&key, b"{}", None).await {
            Err(StorageError::PreconditionFailed) | Err(StorageError::Conflict) => {}
            Ok(_) => return Err("the server accepted If-None-Match: * on an existing object".to_string()),
            Err(e) => return Err(format!("second create answered {e}")),
        }
        let stale = if created == "\"s3lect-stale\"" { "\"s3lect-stale-2\"" } else { "\"s3lect-stale\"" };
        match storage.put_if_match(&key, b"{}", Some(stale)).await {
            Err(StorageError::PreconditionFailed) | Err(StorageError::Conflict) => Ok(()),
            Ok(_) => Err("the server accepted If-Match with a stale etag".to_string()),
            Err(e) => Err(format!("stale If-Match answered {e}")),
        }
    }
    .await;
    let cleanup = storage.delete(&key).await;
    match (verdict, cleanup) {
        (Err(e), _) => Err(format!(
            "this storage does not enforce conditional writes ({e}); leader election on it would be unsafe, so s3lect refuses to run (use a server with S3 conditional PUT support)"
        )),
        (Ok(()), Err(e)) => Err(format!("conformance check passed but deleting scratch object {key} failed: {e}")),
        (Ok(()), Ok(())) => Ok(()),
    }
}

