//! MockStorage: the seed's filesystem storage for users' tests. Conditional writes are atomic
//! across threads and processes: an exclusive file lock serialises writers, and the object and
//! its etag live in one file replaced by rename, so readers never see a torn write.

use super::Condition;
use super::{BoxFuture, Storage, StorageError};
use fs4::fs_std::FileExt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Objects as files in one directory: conditional writes atomic across threads and processes
/// (a file lock, then rename). Go s3lect's `MockStorage`.
pub struct MockStorage {
    dir: PathBuf,
    /// Removes the directory on drop when `new_mock` created it.
    _temp: Option<tempfile::TempDir>,
}

static WRITES: AtomicU64 = AtomicU64::new(0);

impl MockStorage {
    /// Storage in a fresh temporary directory, removed when the storage is dropped.
    pub fn new_mock() -> crate::Result<MockStorage> {
        let temp = tempfile::tempdir().map_err(|e| crate::Error::io("creating a temporary directory", e))?;
        Ok(MockStorage { dir: temp.path().to_path_buf(), _temp: Some(temp) })
    }

    /// Storage in `dir` (created if missing), shared by every process that names it.
    pub fn new(dir: impl AsRef<Path>) -> crate::Result<MockStorage> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| crate::Error::io(format!("creating {}", dir.display()), e))?;
        Ok(MockStorage { dir, _temp: None })
    }

    /// Removes every object.
    pub fn cleanup(&self) -> crate::Result<()> {
        let listing = |e| crate::Error::io(format!("listing {}", self.dir.display()), e);
        for entry in fs::read_dir(&self.dir).map_err(listing)? {
            let path = entry.map_err(listing)?.path();
            let r = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            r.map_err(|e| crate::Error::io(format!("removing {}", path.display()), e))?;
        }
        Ok(())
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        if key.is_empty() || key.starts_with('/') || key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(StorageError::Invalid(format!("key {key:?} is not usable as a mock storage path")));
        }
        Ok(self.dir.join("objects").join(key))
    }

    fn lock(&self) -> Result<File, StorageError> {
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join(".lock")).map_err(io_err)?;
        f.lock_exclusive().map_err(io_err)?;
        Ok(f)
    }

    fn read(&self, key: &str) -> Result<(Vec<u8>, String), StorageError> {
        let bytes = match fs::read(self.path(key)?) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NotFound),
            Err(e) => return Err(io_err(e)),
        };
        // Layout: the etag line, then the data.
        let split = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| StorageError::Invalid("mock object is corrupt".into()))?;
        let etag = String::from_utf8_lossy(&bytes[..split]).into_owned();
        Ok((bytes[split + 1..].to_vec(), etag))
    }

    fn write(&self, key: &str, data: &[u8], expected: Option<&str>) -> Result<String, StorageError> {
        let path = self.path(key)?;
        let _guard = self.lock()?;
        match (self.read(key), expected) {
            (Err(StorageError::NotFound), None) => {}
            (Err(StorageError::NotFound), Some(_)) => return Err(StorageError::NotFound),
            (Ok((_, current)), Some(e)) if current == e => {}
            (Ok(_), _) => return Err(StorageError::PreconditionFailed),
            (Err(e), _) => return Err(e),
        }
        let etag = format!(
            "\"{:x}-{:x}-{:x}\"",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        );
        let parent = path.parent().expect("object paths have a parent");
        fs::create_dir_all(parent).map_err(io_err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(io_err)?;
        tmp.write_all(etag.as_bytes()).and_then(|_| tmp.write_all(b"\n")).and_then(|_| tmp.write_all(data)).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(&path).map_err(|e| io_err(e.error))?;
        Ok(etag)
    }
}

fn io_err(e: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("mock storage I/O: {e}"))
}

impl Storage for MockStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Vec<u8>, String), StorageError>> {
        Box::pin(async move { self.read(key) })
    }

    fn put_if_match<'a>(&'a self, key: &'a str, data: &'a [u8], condition: Condition<'a>) -> BoxFuture<'a, Result<String, StorageError>> {
        // The lock is held for microseconds; blocking the executor that long is harmless.
        Box::pin(async move { self.write(key, data, condition.etag()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let _guard = self.lock()?;
            match fs::remove_file(self.path(key)?) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(e)),
            }
        })
    }
}
