//! The HTTP suite: one test binary (one link step on 2 cores), modules by concern.
//! Most tests run twice, on the embedded backend and on S3 + DynamoDB in moto
//! (`on_both_backends!` in support/helpers.rs).

// First: the `on_both_backends!` macro (support/helpers.rs) must be defined before the
// modules that use it.
#[macro_use]
mod support;

mod access;
mod appsync;
mod aws_edges;
mod aws_s3;
mod budget;
mod cli;
mod conformance;
mod contention;
mod deployment;
mod detector;
mod faults;
mod graphiql;
mod hostile;
mod iam;
mod introspection;
mod label_check;
mod lambda;
mod lambda_stream;
mod migrate;
mod persistence;
mod playground;
mod presigned;
mod random;
mod rest;
mod scan;
mod scan_stream;
mod schema;
mod staged_uploads;
mod stream;
mod ts_clients;
mod unknown_outcomes;
mod upload;
mod variants;
mod viewer;
