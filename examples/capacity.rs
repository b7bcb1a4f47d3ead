//! The capacity model's table for BENCHMARKS.md ("Scale"): item sizes, read and write units
//! per pick and per upload on DynamoDB, before and after write shards, 10³ … 10⁸ images in
//! one label. Computed (by DynamoDB's documented sizing rules), not measured: see
//! `src/adapters/aws/capacity.rs`.
//!
//!     cargo run --example capacity

use pawql::adapters::aws::capacity::{after, before, picks_per_second, uploads_per_second, SIZES};
use resolvers::domain::chunks::WriteShards;

fn main() {
    let shards = WriteShards::default();
    println!(
        "| images | largest item before → after | pick RCU before → after (worst expected) | upload WCU before → after |"
    );
    println!("|---:|---:|---:|---:|");
    for images in SIZES {
        let (old, new) = (before(images), after(images, shards));
        println!(
            "| {images:.0e} | {} B → {} B | {} → {} ({:.2}) | {} → {} |",
            old.largest_item,
            new.largest_item,
            old.pick_rcu,
            new.pick_rcu,
            new.pick_rcu_worst_expected,
            old.upload_wcu,
            new.upload_wcu
        );
    }
    let at = 100_000_000;
    println!(
        "\n{} write shards at 10^8 images: {:.0} uploads/s and {:.0} exact picks/s per label by the per-partition limits",
        shards.count(),
        uploads_per_second(at, shards),
        picks_per_second(at, shards)
    );
}
