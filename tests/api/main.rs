//! The HTTP suite: one test binary (one link step on 2 cores), modules by concern.

mod aws_s3;
mod faults;
mod helpers;
mod hostile;
mod moto;
mod persistence;
mod playground;
mod random;
mod rest;
mod schema;
mod upload;
