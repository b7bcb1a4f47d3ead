//! The AWS backend: the official SDK clients behind the same ports as the embedded one.
//!
//! So far: the S3 image store. The DynamoDB chunk tables, SSM configuration and the Lambda
//! entry point are still to come (the AWS-backend issue); until then `pawql serve` runs on
//! the embedded backend only.

mod s3_image_store;

pub use s3_image_store::{S3ImageStore, DEFAULT_URL_TTL};
