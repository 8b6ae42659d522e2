//! Shared by the `s3lect` command's demo, the benchmark harness and the test kit: local S3
//! servers to elect on, and `s3lect` processes to elect with. Not an API for users: that is
//! the `s3lect` crate.

pub mod cluster;
pub mod local_s3;
