//! The storage contract (tests/common/contract.rs) against the in-process stores. S3 runs the
//! same suite against SeaweedFS and Ceph RGW in tests/servers.rs.

use s3lect_testkit as common;

use common::contract::storage_contract;
use s3lect::{MemoryStorage, MockStorage};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_storage_keeps_the_contract() {
    storage_contract(Arc::new(MemoryStorage::new()), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_storage_keeps_the_contract() {
    let mock = MockStorage::new_mock().unwrap();
    storage_contract(Arc::new(mock), "mock").await;
}
