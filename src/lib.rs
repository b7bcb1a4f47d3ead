//! pawql's outer layer: adapters for the `resolvers` ports, configuration, the HTTP router
//! and the entry points (local server, Lambda, CLI).

pub mod adapters;
pub mod app;
pub mod appsync;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod client;
pub mod config;
pub mod detectors;
pub mod lambda;
pub mod observability;
pub mod scan_stream;
pub mod server;
pub mod worker;
