//! The capacity model: what one pick and one upload cost on DynamoDB as a label grows, for
//! the layout before write shards ("before") and for write shards with slots ("after").
//!
//! The bookkeeping is built through the domain code ([`ShardInfo::file_many`], [`refile`]) and
//! serialised by the real item code (`items.rs`); sizes follow DynamoDB's documented rules
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>):
//! an item is the sum of its attribute names' and values' sizes; a string is its UTF-8
//! length; a number is 1 byte plus 1 per two significant digits; a list or map 3 bytes plus
//! 1 per element plus the elements. A strongly consistent read costs 1 RCU per 4 KB of each
//! item (`GetItem`, `BatchGetItem`: per item, rounded up; `Query`: the items' total, rounded
//! up; eventually consistent: half); a write 1 WCU per 1 KB of the item, twice that in a
//! transaction. `cargo run --example capacity` prints the table in BENCHMARKS.md.

use aws_sdk_dynamodb::types::AttributeValue;
use resolvers::domain::chunks::{chunk_of, class_ceiling, refile, ShardInfo, Slot, WriteShards};
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord, Sha256Hex};
use resolvers::domain::label::LabelSet;
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::domain::weight::Weight;

use super::items::{self, n, s, Item};

/// The size of an attribute value by DynamoDB's rules.
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => {
            let digits = number.trim_start_matches('-').replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
            1 + significant.div_ceil(2)
        }
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        other => panic!("no size rule here for {other:?}"),
    }
}

/// The size of an item by DynamoDB's rules.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn rcu(bytes: usize) -> f64 {
    bytes.div_ceil(4096) as f64
}

fn wcu(bytes: usize) -> f64 {
    bytes.div_ceil(1024) as f64
}

/// What one operation costs at one catalogue size.
#[derive(Debug, Clone, PartialEq)]
pub struct Costs {
    /// Images in the label.
    pub images: u64,
    /// The largest item read or written on the pick and upload paths, in bytes.
    pub largest_item: usize,
    /// Sequential DynamoDB round trips of a pick (when its first slots settle it).
    pub pick_round_trips: u32,
    /// Read units of a pick, strongly consistent (when its first slots settle it).
    pub pick_rcu: f64,
    /// The expected read units of a pick in the worst case: slots kept with probability just
    /// above 1/2 (a chunk's weights spread over their whole class; the bound is proved in the
    /// header of `resolvers/src/domain/chunks.rs`), so a round of two slots settles a draw with
    /// probability 3/4 and 4/3 rounds are read on average.
    pub pick_rcu_worst_expected: f64,
    /// Read and write units of an upload (its reads, and its transaction).
    pub upload_rcu: f64,
    pub upload_wcu: f64,
}

/// A realistic image row: a phone photo with its three variants and placeholder, a timestamp
/// with milliseconds, a slot index as large as `images` makes it.
fn photo(images: u64, shard: u32) -> ImageRecord {
    let cat = LabelSet::default_pets().parse("cat").expect("cat");
    let weight = Weight::from_f64(0.123_456_789).expect("a weight");
    let variant = |size, width, height, byte_size| VariantFacts {
        size,
        kind: ImageKind::Jpeg,
        width,
        height,
        byte_size,
    };
    ImageRecord {
        id: ImageId::new(cat, Sha256Hex::of(&images.to_be_bytes())),
        shard,
        slot: Some(Slot {
            shard,
            chunk: chunk_of(weight.nanos()).expect("pooled"),
            index: images.saturating_sub(1),
        }),
        weight,
        kind: ImageKind::Jpeg,
        width: 4032,
        height: 3024,
        byte_size: 5_242_880,
        created_at: "2026-11-30T12:34:56.789Z".parse().expect("a time"),
        hold: None,
        variants: vec![
            variant(ImageSize::Thumb, 256, 192, 18_411),
            variant(ImageSize::Small, 640, 480, 71_902),
            variant(ImageSize::Medium, 1280, 960, 243_187),
        ],
        placeholder: Some("LEHV6nWB2yk8pyo0adR*.7kCMdnj".into()),
    }
}

/// The shard item of a label of `images` in its worst case for size: every one of the 30
/// chunks in use, each weight sum as large as its class allows.
fn worst_shard(images: u64, shards: WriteShards) -> ShardInfo {
    let mut info = ShardInfo::empty("cat", shards.count() - 1);
    let per_shard = images.div_ceil(u64::from(shards.count()));
    let classes: Vec<u32> = (0..30).collect();
    for (i, &chunk) in classes.iter().enumerate() {
        let count = per_shard / classes.len() as u64 + u64::from((i as u64) < per_shard % classes.len() as u64);
        info.file_many(class_ceiling(chunk), count);
    }
    info.held_volume = per_shard / 10;
    info
}

/// The costs in the layout of write shards and slots (this code).
pub fn after(images: u64, shards: WriteShards) -> Costs {
    let info = worst_shard(images, shards);
    let shard_item = items::shard_item(&info, u64::MAX / 2);
    let record = photo(images, info.shard);
    let slot = record.slot.expect("a pooled photo has a slot");
    let row = items::image_item(&record);
    let slot_item = items::slot_item("cat", slot, &record);
    let (shard_bytes, row_bytes, slot_bytes) = (item_size(&shard_item), item_size(&row), item_size(&slot_item));
    // The upload's plan: a row, a slot and the shard item, in one transaction.
    let plan = refile(info.clone(), None, Some(record.clone()), None).expect("a plan");
    assert_eq!(
        plan.writes.len(),
        3,
        "an upload writes a row, a slot and the shard item"
    );
    let shard_reads = f64::from(shards.count()) * rcu(shard_bytes);
    Costs {
        images,
        largest_item: shard_bytes.max(row_bytes).max(slot_bytes),
        pick_round_trips: 2,
        pick_rcu: shard_reads + 2.0 * rcu(slot_bytes),
        pick_rcu_worst_expected: shard_reads + 2.0 * rcu(slot_bytes) * 4.0 / 3.0,
        // Is the image new (GetItem of the missing row), and the shard item.
        upload_rcu: rcu(row_bytes) + rcu(shard_bytes),
        upload_wcu: 2.0 * (wcu(row_bytes) + wcu(slot_bytes) + wcu(shard_bytes)),
    }
}

/// The costs in the layout before write shards: one chunk-info item per label listing every
/// chunk (volume and weight sum), chunks of 100 images read through `LabelChunkIndex`.
pub fn before(images: u64) -> Costs {
    let chunks = images.div_ceil(100).max(1);
    let numbers = |values: Vec<u64>| AttributeValue::L(values.into_iter().map(n).collect());
    let info = Item::from([
        ("label".to_owned(), s("cat")),
        ("chunkNumber".to_owned(), n(chunks)),
        ("chunkMax".to_owned(), n(120)),
        ("chunkThreshold".to_owned(), n(100)),
        ("activeChunks".to_owned(), numbers(vec![chunks - 1])),
        ("chunkVolume".to_owned(), numbers(vec![100; chunks as usize])),
        (
            "chunkWeightSum".to_owned(),
            numbers((0..chunks).map(|c| 51_234_567_891 + c % 1000).collect()),
        ),
        ("revision".to_owned(), n(images)),
    ]);
    // The rows of the time: no variants, no placeholder.
    let old_photo = ImageRecord {
        variants: Vec::new(),
        placeholder: None,
        ..photo(images, 0)
    };
    let mut row = items::image_item(&old_photo);
    row.remove("shard");
    row.remove("slot");
    row.insert("chunkNumber".to_owned(), n(chunks - 1));
    let (info_bytes, row_bytes) = (item_size(&info), item_size(&row));
    // The index projects whole rows; an index entry adds 100 bytes of overhead.
    let chunk_read = 100 * (row_bytes + 100);
    Costs {
        images,
        largest_item: info_bytes.max(row_bytes),
        pick_round_trips: 3,
        // Chunk info (strong), the chunk through the index (eventually consistent), the drawn
        // row read back (strong).
        pick_rcu: rcu(info_bytes) + rcu(chunk_read) / 2.0 + rcu(row_bytes),
        pick_rcu_worst_expected: rcu(info_bytes) + rcu(chunk_read) / 2.0 + rcu(row_bytes),
        upload_rcu: rcu(row_bytes) + rcu(info_bytes),
        // Row and chunk info in a transaction, and the index's copy of the row.
        upload_wcu: 2.0 * (wcu(row_bytes) + wcu(info_bytes)) + wcu(row_bytes + 100),
    }
}

/// The catalogue sizes of the model: 10³ … 10⁸ images in one label.
pub const SIZES: [u64; 6] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// Uploads a second one label takes by DynamoDB's documented per-partition limit (1,000 WCU/s):
/// each shard item is its own partition key, and every upload writes one of them.
pub fn uploads_per_second(images: u64, shards: WriteShards) -> f64 {
    let shard_wcu = 2.0 * wcu(item_size(&items::shard_item(&worst_shard(images, shards), 1)));
    f64::from(shards.count()) * 1000.0 / shard_wcu
}

/// Picks a second one label takes by the per-partition read limit (3,000 RCU/s): every pick
/// reads every shard item once.
pub fn picks_per_second(images: u64, shards: WriteShards) -> f64 {
    3000.0 / rcu(item_size(&items::shard_item(&worst_shard(images, shards), 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_documented_rules() {
        assert_eq!(value_size(&s("cat")), 3);
        assert_eq!(value_size(&n(0)), 2);
        assert_eq!(value_size(&n(100)), 2, "trailing zeros are trimmed");
        assert_eq!(value_size(&n("0.123456789")), 6);
        assert_eq!(value_size(&n(1_000_000_001)), 6);
        assert_eq!(value_size(&AttributeValue::L(vec![n(5), n(55)])), 3 + 2 + 2 + 2);
        assert_eq!(item_size(&Item::from([("label".to_owned(), s("cat#0"))])), 10);
    }

    #[test]
    fn per_operation_cost_does_not_grow_with_the_catalogue() {
        let shards = WriteShards::default();
        let at_a_million = after(1_000_000, shards);
        for images in SIZES {
            let now = after(images, shards);
            assert!(
                now.largest_item <= 4096,
                "{images}: largest item {} bytes",
                now.largest_item
            );
            assert!(now.pick_round_trips <= 3);
            assert!(now.pick_rcu_worst_expected <= 6.0, "{images}: {now:?}");
            assert!(now.upload_wcu <= 12.0, "{images}: {} WCU an upload", now.upload_wcu);
            assert!(uploads_per_second(images, shards) >= 1000.0, "{images}");
            assert_eq!(
                (now.pick_rcu, now.upload_wcu),
                (at_a_million.pick_rcu, at_a_million.upload_wcu),
                "{images}: the same as at 10^6"
            );
        }
        // The layout before write shards, for the record: it grows, and fails at scale.
        let old = before(1_000_000);
        assert!(old.largest_item > 50_000, "{old:?}");
        assert!(
            before(100_000_000).largest_item > 400 * 1024,
            "past DynamoDB's 400 KB item limit"
        );
    }

    #[test]
    fn more_shards_take_more_uploads_and_cost_picks_one_unit_each() {
        let one = WriteShards::new(1).unwrap();
        let eight = WriteShards::new(8).unwrap();
        assert!(
            uploads_per_second(1_000_000, one) < 1000.0,
            "one shard item cannot take 1,000/s"
        );
        assert!(uploads_per_second(1_000_000, eight) >= 8.0 * uploads_per_second(1_000_000, one) - 1.0);
        assert_eq!(after(1_000_000, eight).pick_rcu - after(1_000_000, one).pick_rcu, 7.0);
    }
}
