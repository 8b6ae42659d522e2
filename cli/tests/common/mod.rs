//! The test kit, plus what only the command's tests need: the `s3lect` binary built for them.
#![allow(dead_code, unused_imports)]

pub use s3lect_testkit::*;

pub mod interop;
pub mod metrics;
pub mod nodes;
