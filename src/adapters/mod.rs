//! Adapters: real implementations of the `resolvers` ports.
//!
//! - [`embedded`]: a data directory and a redb database; the default, no network needed.
//! - [`aws`]: the official AWS SDK clients (S3, DynamoDB, SSM).

pub mod aws;
pub mod embedded;
