//! The `s3-storage` world: s3lect's `storage` interface implemented with the requests
//! `s3lect-s3` builds and signs, sent through the host's `wasi:http/outgoing-handler`.
//!
//! Configuration: the AWS_* variables read by [`s3lect_s3::S3Config::from_env`] and
//! `S3LECT_BUCKET`, through `wasi:cli/environment`.

use s3lect_s3::{Bucket, S3Config};

/// The bucket this component talks to, from the environment.
pub fn bucket_from_env() -> Result<Bucket, String> {
    let name = std::env::var("S3LECT_BUCKET").ok().filter(|b| !b.is_empty()).ok_or("S3LECT_BUCKET is not set")?;
    Bucket::new(S3Config::from_env(&name)?)
}

#[cfg(target_arch = "wasm32")]
mod wasi_http;
