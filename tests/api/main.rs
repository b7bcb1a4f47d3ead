//! The HTTP suite: one test binary (one link step on 2 cores), modules by concern.

mod faults;
mod helpers;
mod hostile;
mod persistence;
mod playground;
mod random;
mod rest;
mod schema;
mod upload;
