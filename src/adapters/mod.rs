//! Adapters: real implementations of the `resolvers` ports.
//!
//! - [`embedded`]: a data directory and a redb database; the default, no network needed.

pub mod embedded;
