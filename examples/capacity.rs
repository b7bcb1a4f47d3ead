//! The capacity model's tables for BENCHMARKS.md ("Scale"): item sizes and units per pick and
//! per upload as a label grows, and the load of uploads, picks and deletes on every partition
//! key they touch. Computed (by DynamoDB's documented sizing rules and per-partition limits),
//! not measured: see `src/adapters/aws/capacity.rs`, whose test checks BENCHMARKS.md shows
//! exactly this output.
//!
//!     cargo run --example capacity

use pawql::adapters::aws::capacity::scale_tables;
use resolvers::domain::chunks::WriteShards;

fn main() {
    print!("{}", scale_tables(WriteShards::default()));
}
