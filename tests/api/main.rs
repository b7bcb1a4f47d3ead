//! HTTP suite.
