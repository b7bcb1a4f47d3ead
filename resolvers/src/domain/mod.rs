//! The domain: labels, weights, image identity, chunk bookkeeping, sampling and upload
//! validation. Pure logic, no I/O; every backend shares it.

pub mod chunks;
pub mod detection;
pub mod failure;
pub mod hold;
pub mod image;
pub mod label;
pub mod sampling;
pub mod scan;
pub mod stats;
pub mod ticket;
pub mod validation;
pub mod variants;
pub mod weight;
