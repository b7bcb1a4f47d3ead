//! What the tests stand on, apart from the tests themselves:
//!
//! - `helpers.rs`: `TestApp` (a real server on port 0, wired as `pawql serve` is), its
//!   requests and checks, and the `on_both_backends!` macro;
//! - `moto.rs`: moto's server, started once per test process;
//! - `hooked.rs`: the one forwarding wrapper around the ports (counting, fault injection);
//! - `fault_injection.rs`: faults a test arms on the ports (a failing store, a slow table);
//! - `canned.rs`: DynamoDB answers a loaded table gives (conflicts, throttling, lost answers),
//!   injected into the SDK client.

// First: the `on_both_backends!` macro must be defined before the modules that use it.
#[macro_use]
pub mod helpers;

pub mod canned;
pub mod fault_injection;
pub mod hooked;
pub mod moto;
