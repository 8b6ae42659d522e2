//! The form in which a server wants the etag in `If-Match`, and a storage adapter that sends it
//! so. Ceph RGW 16 answers 412 to the etag exactly as it returned it (quoted) and accepts it
//! unquoted; the conformance check finds out which form a server accepts.

use super::Condition;
use super::{BoxFuture, Object, Storage, StorageError};
pub use s3lect_s3::{EtagForm, unquoted};
use std::sync::Arc;

/// A storage that sends `If-Match` etags in the given form. Etags it returns are untouched, so
/// the election compares them exactly as the server wrote them.
pub struct WithEtagForm {
    inner: Arc<dyn Storage>,
    form: EtagForm,
}

impl WithEtagForm {
    /// `inner` unchanged for [`EtagForm::AsReturned`], wrapped otherwise.
    pub fn wrap(inner: Arc<dyn Storage>, form: EtagForm) -> Arc<dyn Storage> {
        match form {
            EtagForm::AsReturned => inner,
            form => Arc::new(WithEtagForm { inner, form }),
        }
    }
}

impl Storage for WithEtagForm {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Vec<u8>, String), StorageError>> {
        self.inner.get(key)
    }

    fn get_object<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Object, StorageError>> {
        self.inner.get_object(key)
    }

    fn put_if_match<'a>(&'a self, key: &'a str, data: &'a [u8], condition: Condition<'a>) -> BoxFuture<'a, Result<String, StorageError>> {
        self.inner.put_if_match(key, data, Condition::from_etag(condition.etag().map(|e| self.form.apply(e))))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        self.inner.delete(key)
    }
}
