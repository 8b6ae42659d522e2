//! The `storage-contract` world: `wasi:cli/run` runs the storage contract
//! (`s3lect_guest::contract`) against the `storage` this component is composed with, under the
//! key prefix in S3LECT_CONTRACT_PREFIX. It prints `storage contract: ok`, or the failed check
//! and exits 1. A test tool: `cli/tests/composed.rs` runs it composed with the S3 storage
//! component.

#[cfg(target_arch = "wasm32")]
mod run {
    use s3lect_guest::StorageError;
    use s3lect_guest::contract::{ContractStorage, sequential_contract};

    wit_bindgen::generate!({
        path: "../../wit",
        world: "storage-contract",
        generate_all,
    });

    use s3lect::election::storage as wit_storage;

    s3lect_guest::storage_error_conversions!(wit_storage);

    const TIMEOUT_MS: u64 = 10_000;

    struct Imported;

    impl ContractStorage for Imported {
        fn get(&mut self, key: &str) -> Result<(Vec<u8>, String), StorageError> {
            wit_storage::get(key, TIMEOUT_MS).map(|o| (o.data, o.etag)).map_err(storage_error_from_wit)
        }
        fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>) -> Result<String, StorageError> {
            wit_storage::put_if_match(key, data, etag, TIMEOUT_MS).map_err(storage_error_from_wit)
        }
    }

    struct Component;

    impl exports::wasi::cli::run::Guest for Component {
        fn run() -> Result<(), ()> {
            let prefix = std::env::var("S3LECT_CONTRACT_PREFIX").unwrap_or_else(|_| "s3lect-contract".into());
            match sequential_contract(&mut Imported, &prefix) {
                Ok(()) => {
                    println!("storage contract: ok");
                    Ok(())
                }
                Err(e) => {
                    println!("storage contract: FAILED: {e}");
                    Err(())
                }
            }
        }
    }

    export!(Component);
}
