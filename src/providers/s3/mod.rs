//! The S3 client for buckets (any endpoint; MinIO in production): configuration from the
//! standard `AWS_*` variables and files, path-style addressing for custom endpoints, and the
//! bucket settings drover manages (versioning, policy, lifecycle, tags) read and written as
//! typed values. S3 has no blocking queries: live state is read, never watched.

mod client;
mod config;
mod error;

pub use client::{BucketSettings, Read, S3Client, Versioning, Wanted};
pub use config::{S3Config, StaticCredentials};
pub use error::S3Error;
