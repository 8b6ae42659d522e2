//! The `s3-storage` world: s3lect's `storage` interface implemented with the requests
//! `s3lect-s3` builds and signs, sent through the host's `wasi:http/outgoing-handler`.
//!
//! Configuration: the AWS_* variables read by [`s3lect_s3::S3Config::from_env`] (temporary
//! credentials with `AWS_SESSION_TOKEN`, as serverless platforms inject them), `S3LECT_BUCKET`,
//! and `S3LECT_IF_MATCH_ETAG=unquoted` for servers that refuse the quoted etag (Ceph RGW 16),
//! through `wasi:cli/environment`.

use s3lect_s3::{Bucket, EtagForm, S3Config};

/// The bucket this component talks to, from the environment.
pub fn bucket_from_env() -> Result<Bucket, String> {
    let name = std::env::var("S3LECT_BUCKET").ok().filter(|b| !b.is_empty()).ok_or("S3LECT_BUCKET is not set")?;
    Bucket::new(S3Config::from_env(&name)?)
}

/// The `If-Match` form from `S3LECT_IF_MATCH_ETAG` (default: the etag as returned).
pub fn etag_form_from_env() -> Result<EtagForm, String> {
    match std::env::var("S3LECT_IF_MATCH_ETAG") {
        Ok(v) if !v.is_empty() => v.parse().map_err(|e| format!("S3LECT_IF_MATCH_ETAG: {e}")),
        _ => Ok(EtagForm::AsReturned),
    }
}

#[cfg(target_arch = "wasm32")]
mod wasi_http;
