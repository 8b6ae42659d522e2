//! The storage export: `s3lect-s3`'s signed requests, sent by `s3lect-wasi-http` within the
//! call's timeout.

use crate::bucket_from_env;
use s3lect_guest::Object;
use s3lect_s3::{Bucket, Request, StorageError};
use s3lect_wasi_http::{Answer, Exchange, HttpError};
use std::sync::OnceLock;
use std::time::SystemTime;

wit_bindgen::generate!({
    path: "../../wit",
    world: "s3-storage",
    generate_all,
});

use exports::s3lect::election::storage as wit_storage;
use exports::s3lect::election::storage::Guest;

struct Component;

fn bucket() -> Result<&'static Bucket, StorageError> {
    static BUCKET: OnceLock<Result<Bucket, String>> = OnceLock::new();
    BUCKET.get_or_init(bucket_from_env).as_ref().map_err(|e| StorageError::Invalid(format!("s3-storage component configuration: {e}")))
}

/// One answer, or the transport's failure as a storage error.
fn send(req: Request, timeout_ms: u64) -> Result<Answer, StorageError> {
    let exchange = Exchange {
        method: req.method,
        scheme: &req.scheme,
        authority: &req.authority,
        path: &req.path,
        headers: &req.headers,
        body: &req.body,
    };
    match s3lect_wasi_http::send(&exchange, timeout_ms) {
        Ok(a) => Ok(a),
        Err(HttpError::Unavailable(m)) => Err(StorageError::Unavailable(m)),
        Err(HttpError::Invalid(m)) => Err(StorageError::Invalid(m)),
    }
}

s3lect_guest::storage_error_conversions!(wit_storage);

impl Guest for Component {
    fn get(key: String, timeout_ms: u64) -> Result<wit_storage::Object, wit_storage::StorageError> {
        let run = || {
            let b = bucket()?;
            let a = send(b.get(&key, SystemTime::now())?, timeout_ms)?;
            let server_clock = s3lect_s3::server_clock(a.header("last-modified").as_deref(), a.header("date").as_deref());
            let (data, etag) = b.got(a.status, a.header("etag").as_deref(), a.body)?;
            Ok(Object { data, etag, server_clock })
        };
        run().map(object_to_wit).map_err(storage_error_to_wit)
    }

    fn put_if_match(key: String, data: Vec<u8>, etag: Option<String>, timeout_ms: u64) -> Result<String, wit_storage::StorageError> {
        let run = || {
            let b = bucket()?;
            let form = crate::etag_form_from_env().map_err(StorageError::Invalid)?;
            let etag = etag.as_deref().map(|e| form.apply(e));
            let a = send(b.put_if_match(&key, &data, etag, SystemTime::now())?, timeout_ms)?;
            b.put_answer(a.status, a.header("etag").as_deref(), &a.body)
        };
        run().map_err(storage_error_to_wit)
    }
}

export!(Component);
