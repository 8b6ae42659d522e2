//! A Storage decorator that counts requests, to show which calls an elector makes.
#![allow(dead_code)]

use s3lect::storage::BoxFuture;
use s3lect::{Storage, StorageError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Counting {
    pub inner: Arc<dyn Storage>,
    pub gets: AtomicU32,
    pub puts: AtomicU32,
}

impl Counting {
    pub fn new(inner: Arc<dyn Storage>) -> Arc<Counting> {
        Arc::new(Counting { inner, gets: AtomicU32::new(0), puts: AtomicU32::new(0) })
    }
    pub fn gets(&self) -> u32 {
        self.gets.load(Ordering::SeqCst)
    }
}

impl Storage for Counting {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Vec<u8>, String), StorageError>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }
    fn put_if_match<'a>(&'a self, key: &'a str, data: &'a [u8], etag: Option<&'a str>) -> BoxFuture<'a, Result<String, StorageError>> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_if_match(key, data, etag)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        self.inner.delete(key)
    }
}
