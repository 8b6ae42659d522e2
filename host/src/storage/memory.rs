//! In-process storages: `MemoryStorage` (a map with conditional writes, for single-process
//! tests and benchmarks that must not measure a network) and `CountingStorage` (counts the
//! requests another storage receives, for cost accounting).

use super::Condition;
use super::{BoxFuture, Object, Storage, StorageError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Objects by key (bytes, etag), and the counter that makes etags unique.
type Objects = (HashMap<String, (Vec<u8>, String)>, u64);

/// Objects in this process's memory, conditional writes atomic under a mutex. For tests and
/// for electors that share one process.
#[derive(Default)]
pub struct MemoryStorage {
    objects: Mutex<Objects>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

impl Storage for MemoryStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Vec<u8>, String), StorageError>> {
        Box::pin(async move { self.objects.lock().unwrap().0.get(key).cloned().ok_or(StorageError::NotFound) })
    }

    fn put_if_match<'a>(&'a self, key: &'a str, data: &'a [u8], condition: Condition<'a>) -> BoxFuture<'a, Result<String, StorageError>> {
        let etag = condition.etag();
        Box::pin(async move {
            let mut guard = self.objects.lock().unwrap();
            let (objects, writes) = &mut *guard;
            match (objects.get(key), etag) {
                (None, None) => {}
                (Some((_, current)), Some(e)) if current == e => {}
                (None, Some(_)) => return Err(StorageError::NotFound),
                _ => return Err(StorageError::PreconditionFailed),
            }
            *writes += 1;
            let new = format!("\"m{writes}\"");
            objects.insert(key.to_string(), (data.to_vec(), new.clone()));
            Ok(new)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            self.objects.lock().unwrap().0.remove(key);
            Ok(())
        })
    }
}

/// Counts GETs and PUTs passed on to `inner`.
pub struct CountingStorage {
    inner: Arc<dyn Storage>,
    gets: AtomicU64,
    puts: AtomicU64,
}

impl CountingStorage {
    /// Counts the requests made through it to `inner`.
    pub fn new(inner: Arc<dyn Storage>) -> Arc<CountingStorage> {
        Arc::new(CountingStorage { inner, gets: AtomicU64::new(0), puts: AtomicU64::new(0) })
    }
    /// Reads so far.
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }
    /// Writes so far.
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::SeqCst)
    }
}

impl Storage for CountingStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Vec<u8>, String), StorageError>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }
    fn get_object<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Object, StorageError>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_object(key)
    }
    fn put_if_match<'a>(&'a self, key: &'a str, data: &'a [u8], condition: Condition<'a>) -> BoxFuture<'a, Result<String, StorageError>> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_if_match(key, data, condition)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        self.inner.delete(key)
    }
}
