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
//! transaction. A `DeleteItem` costs the size of the item it deletes; reading an item that
//! does not exist still costs 1 RCU.
//!
//! Throughput is bounded per partition key value: DynamoDB serves each at most 3,000 RCU and
//! 1,000 WCU a second
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html>).
//! [`partition_load`] runs uploads, deletes and picks of one label through the real plans
//! ([`refile`]), the real transaction items (`plan_transaction`) and the real keys, over a
//! sample of images with one image for every pair of write shard and row partition (what
//! uniform hashes give in the long run), and counts every item each operation reads and
//! writes, grouped by table and partition key value. A label's ceiling for an operation is
//! then the smallest, over the keys it touches, of the limit divided by the units that key
//! takes per operation. `cargo run --example capacity` prints the tables in BENCHMARKS.md, and
//! a test checks that BENCHMARKS.md shows exactly them.

use aws_sdk_dynamodb::types::AttributeValue;
use resolvers::domain::chunks::{chunk_of, class_ceiling, refile, ShardInfo, Slot, WriteShards};
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord, Sha256Hex};
use resolvers::domain::label::LabelSet;
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::domain::weight::Weight;

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::TransactWriteItem;
use resolvers::domain::chunks::{last_slot_to_read, Write};

use super::dynamo_chunk_tables::{plan_transaction, RowGuard};
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

/// DynamoDB's documented ceilings of one partition key value, per second.
pub const PARTITION_RCU: f64 = 3000.0;
pub const PARTITION_WCU: f64 = 1000.0;

/// What one operation of the sample did to one item.
#[derive(Debug, Clone, PartialEq)]
struct Touch {
    table: &'static str,
    key: String,
    rcu: f64,
    wcu: f64,
}

/// The keys of one kind (same table, same shape: `cat#·`, `cat#·#·#·`) an operation touched.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFamily {
    pub table: &'static str,
    /// The key's shape, digits replaced by `·`: `cat#·` (a shard item or a row partition),
    /// `cat#·#·#·` (a slot).
    pub shape: String,
    /// How many distinct values of this shape the sample touched.
    pub values: usize,
    /// Of the sample's operations, how many touched the busiest value.
    pub busiest_operations: usize,
    /// Units the busiest value took over the whole sample.
    pub busiest_rcu: f64,
    pub busiest_wcu: f64,
    /// Operations a second the label takes before the busiest value reaches its limit;
    /// `None` when every operation touched its own value (no shared key to saturate).
    pub ceiling: Option<f64>,
}

/// One operation of one label over the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationLoad {
    pub operation: &'static str,
    pub operations: usize,
    /// Items read and written per operation, on average over the sample.
    pub items_read: f64,
    pub items_written: f64,
    pub families: Vec<KeyFamily>,
}

impl OperationLoad {
    /// Operations a second one label takes: the lowest ceiling of the keys it shares.
    pub fn per_second(&self) -> f64 {
        self.families
            .iter()
            .filter_map(|family| family.ceiling)
            .fold(f64::INFINITY, f64::min)
    }
}

fn shape_of(key: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in key.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('·');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// Per key value: the operations that touched it, and the read and write units it took.
type KeyLoad = (usize, f64, f64);

fn load(operation: &'static str, operations: &[Vec<Touch>]) -> OperationLoad {
    // (table, shape) -> key -> its load
    let mut by_key: BTreeMap<(&'static str, String), BTreeMap<String, KeyLoad>> = BTreeMap::new();
    for touches in operations {
        let mut seen = std::collections::BTreeSet::new();
        for touch in touches {
            let entry = by_key
                .entry((touch.table, shape_of(&touch.key)))
                .or_default()
                .entry(touch.key.clone())
                .or_default();
            if seen.insert((touch.table, touch.key.clone())) {
                entry.0 += 1;
            }
            entry.1 += touch.rcu;
            entry.2 += touch.wcu;
        }
    }
    let count = operations.len() as f64;
    let families = by_key
        .into_iter()
        .map(|((table, shape), keys)| {
            let ceiling_of = |&(_, rcu, wcu): &KeyLoad| {
                let by_reads = if rcu > 0.0 {
                    PARTITION_RCU * count / rcu
                } else {
                    f64::INFINITY
                };
                let by_writes = if wcu > 0.0 {
                    PARTITION_WCU * count / wcu
                } else {
                    f64::INFINITY
                };
                by_reads.min(by_writes)
            };
            let busiest = keys
                .values()
                .min_by(|a, b| ceiling_of(a).total_cmp(&ceiling_of(b)))
                .copied()
                .expect("a family has a key");
            let shared = keys.values().any(|&(ops, _, _)| ops > 1);
            KeyFamily {
                table,
                shape,
                values: keys.len(),
                busiest_operations: busiest.0,
                busiest_rcu: busiest.1,
                busiest_wcu: busiest.2,
                ceiling: shared.then(|| ceiling_of(&busiest)),
            }
        })
        .collect();
    let total = |f: fn(&Touch) -> bool| operations.iter().flatten().filter(|t| f(t)).count() as f64 / count;
    OperationLoad {
        operation,
        operations: operations.len(),
        items_read: total(|t| t.rcu > 0.0),
        items_written: total(|t| t.wcu > 0.0),
        families,
    }
}

const CHUNK_INFO: &str = "chunkInfoTable";
const IMAGE_CHUNKS: &str = "imageChunksTable";

/// The items as stored while the sample runs, so a delete is charged the size of what it
/// deletes: (table, partition key value, sort key value or "") -> item.
type Stored = BTreeMap<(&'static str, String, String), Item>;

fn key_of(table: &'static str, item: &Item) -> (&'static str, String, String) {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    (
        table,
        text("label"),
        if table == IMAGE_CHUNKS {
            text("s3key")
        } else {
            String::new()
        },
    )
}

fn table_of(name: &str) -> &'static str {
    if name == CHUNK_INFO {
        CHUNK_INFO
    } else {
        assert_eq!(name, IMAGE_CHUNKS, "a table the model does not know");
        IMAGE_CHUNKS
    }
}

fn strong_read(table: &'static str, key: Item, stored: &Stored, transactional: bool) -> Touch {
    let found = stored.get(&key_of(table, &key)).map_or(0, item_size);
    let units = rcu(found).max(1.0);
    Touch {
        table,
        key: key_of(table, &key).1,
        rcu: if transactional { 2.0 * units } else { units },
        wcu: 0.0,
    }
}

/// The write units of a transaction's items, applied to `stored`.
fn apply(transaction: Vec<TransactWriteItem>, stored: &mut Stored) -> Vec<Touch> {
    let mut out = Vec::new();
    for write in transaction {
        if let Some(put) = write.put() {
            let table = table_of(put.table_name());
            let item = put.item().clone();
            let key = key_of(table, &item);
            out.push(Touch {
                table,
                key: key.1.clone(),
                rcu: 0.0,
                wcu: 2.0 * wcu(item_size(&item)),
            });
            stored.insert(key, item);
        } else if let Some(delete) = write.delete() {
            let table = table_of(delete.table_name());
            let key = key_of(table, delete.key());
            let gone = stored.remove(&key).expect("a delete of a stored item");
            out.push(Touch {
                table,
                key: key.1,
                rcu: 0.0,
                wcu: 2.0 * wcu(item_size(&gone)).max(1.0),
            });
        } else {
            panic!("a transaction item the model does not know: {write:?}");
        }
    }
    out
}

/// An image of the sample: the `shard`-th write shard's, in row partition `partition`.
fn sample_image(shards: WriteShards, shard: u32, partition: u32) -> ImageRecord {
    let hex = format!("{shard:08x}{partition:08x}{:048x}", 0xca7u32);
    let id = ImageId::new(
        LabelSet::default_pets().parse("cat").expect("cat"),
        Sha256Hex::parse(&hex).expect("hex"),
    );
    assert_eq!((shards.shard_of(&id), items::row_partition(&id)), (shard, partition));
    ImageRecord {
        id,
        ..photo(1_000_000, shard)
    }
}

/// Uploads, then picks, then deletes of one label with `shards` write shards, each shard's
/// bookkeeping starting as at 10⁶ images: the load of each on every partition key it touches.
pub fn partition_load(shards: WriteShards) -> Vec<OperationLoad> {
    let mut stored = Stored::new();
    let mut infos: Vec<ShardInfo> = (0..shards.count())
        .map(|shard| {
            let mut info = worst_shard(1_000_000, shards);
            info.shard = shard;
            info
        })
        .collect();
    for info in &infos {
        let item = items::shard_item(info, 1);
        stored.insert(key_of(CHUNK_INFO, &item), item);
    }
    let (mut uploads, mut picks, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    let mut records: Vec<ImageRecord> = Vec::new();
    for partition in 0..items::ROW_PARTITIONS {
        for shard in 0..shards.count() {
            let image = sample_image(shards, shard, partition);
            let info = &mut infos[shard as usize];
            // The upload's reads: is the image new (its row), and its shard's item.
            let mut touches = vec![
                strong_read(IMAGE_CHUNKS, items::image_key(&image.id), &stored, false),
                strong_read(
                    CHUNK_INFO,
                    items::info_key(&resolvers::domain::chunks::shard_key("cat", shard)),
                    &stored,
                    false,
                ),
            ];
            let plan = refile(info.clone(), None, Some(image.clone()), None).expect("an upload plan");
            let transaction = plan_transaction(
                CHUNK_INFO,
                IMAGE_CHUNKS,
                "cat",
                &plan.writes,
                1,
                &image.id,
                RowGuard::Absent,
            )
            .expect("a transaction");
            touches.extend(apply(transaction, &mut stored));
            uploads.push(touches);
            *info = plan.info;
            records.push(plan.record.expect("an upload files a row"));
        }
    }
    // A pick: every shard item, then two slots.
    for (i, record) in records.iter().enumerate() {
        let mut touches: Vec<Touch> = (0..shards.count())
            .map(|shard| {
                let key = items::info_key(&resolvers::domain::chunks::shard_key("cat", shard));
                strong_read(CHUNK_INFO, key, &stored, false)
            })
            .collect();
        for drawn in [record, &records[(i + 1) % records.len()]] {
            let slot = drawn.slot.expect("a pooled image has a slot");
            touches.push(strong_read(
                CHUNK_INFO,
                items::info_key(&slot.key("cat")),
                &stored,
                false,
            ));
        }
        picks.push(touches);
    }
    // Deletes in upload order: each reads its row and shard item in one transaction, and the
    // last slot of its chunk when that image moves into its place.
    let mut by_slot: BTreeMap<String, ImageRecord> = records
        .iter()
        .map(|r| (r.slot.expect("a slot").key("cat"), r.clone()))
        .collect();
    for record in &records {
        let current = by_slot
            .values()
            .find(|r| r.id == record.id)
            .cloned()
            .expect("a stored image");
        let info = &mut infos[current.shard as usize];
        let mut touches = vec![
            strong_read(IMAGE_CHUNKS, items::image_key(&current.id), &stored, true),
            strong_read(
                CHUNK_INFO,
                items::info_key(&resolvers::domain::chunks::shard_key("cat", current.shard)),
                &stored,
                true,
            ),
        ];
        let last = last_slot_to_read(info, &current, 0).map(|slot| {
            touches.push(strong_read(
                CHUNK_INFO,
                items::info_key(&slot.key("cat")),
                &stored,
                false,
            ));
            by_slot[&slot.key("cat")].clone()
        });
        let plan = refile(info.clone(), Some(&current), None, last).expect("a delete plan");
        let transaction = plan_transaction(
            CHUNK_INFO,
            IMAGE_CHUNKS,
            "cat",
            &plan.writes,
            1,
            &current.id,
            RowGuard::Unchanged(&current),
        )
        .expect("a transaction");
        touches.extend(apply(transaction, &mut stored));
        deletes.push(touches);
        by_slot.remove(&current.slot.expect("a slot").key("cat"));
        for write in &plan.writes {
            match write {
                Write::PutSlot(slot, moved) => {
                    by_slot.insert(slot.key("cat"), moved.clone());
                }
                Write::DeleteSlot(slot) => {
                    by_slot.remove(&slot.key("cat"));
                }
                _ => {}
            }
        }
        *info = plan.info;
    }
    vec![load("upload", &uploads), load("pick", &picks), load("delete", &deletes)]
}

/// `12345` as `12,345`.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn units(value: f64) -> String {
    if value.fract() == 0.0 {
        grouped(value as u64)
    } else {
        format!("{value:.2}")
    }
}

fn power_of_ten(images: u64) -> String {
    let exponent = (images as f64).log10().round() as u32;
    let superscript: String = exponent
        .to_string()
        .chars()
        .map(|d| ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'][d.to_digit(10).expect("a digit") as usize])
        .collect();
    format!("10{superscript}")
}

/// The tables of BENCHMARKS.md's "Scale", exactly as the model computes them.
pub fn scale_tables(shards: WriteShards) -> String {
    let mut out = String::new();
    out.push_str("| images in one label | largest item before → after | RCU per pick before → after (worst expected) | WCU per upload before → after |\n");
    out.push_str("|---:|---:|---:|---:|\n");
    for images in SIZES {
        let (old, new) = (before(images), after(images, shards));
        let over = if old.largest_item > 400 * 1024 {
            " (over DynamoDB's 400 KB item limit: every upload fails)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {} | {} B{over} → {} B | {} → {} ({}) | {} → {} |\n",
            power_of_ten(images),
            grouped(old.largest_item as u64),
            grouped(new.largest_item as u64),
            units(old.pick_rcu),
            units(new.pick_rcu),
            units(new.pick_rcu_worst_expected),
            units(old.upload_wcu),
            units(new.upload_wcu),
        ));
    }
    for shards in [
        shards,
        WriteShards::new(8).expect("8 shards"),
        WriteShards::new(32).expect("32 shards"),
    ] {
        let loads = partition_load(shards);
        out.push_str(&format!(
            "\n{} write shards, {} row partitions ({} images in the sample):\n\n",
            shards.count(),
            items::ROW_PARTITIONS,
            loads[0].operations
        ));
        out.push_str("| operation | items read / written each | partition key (table) | values touched | busiest value: operations, RCU, WCU | ceiling per label |\n");
        out.push_str("|---|---:|---|---:|---:|---:|\n");
        for load in &loads {
            for (i, family) in load.families.iter().enumerate() {
                let first = i == 0;
                out.push_str(&format!(
                    "| {} | {} | `{}` ({}) | {} | {}, {}, {} | {} |\n",
                    if first { load.operation } else { "" },
                    if first {
                        format!("{} / {}", units(load.items_read), units(load.items_written))
                    } else {
                        String::new()
                    },
                    family.shape,
                    family.table,
                    family.values,
                    family.busiest_operations,
                    units(family.busiest_rcu),
                    units(family.busiest_wcu),
                    family.ceiling.map_or("each its own value".to_owned(), |c| format!(
                        "{}/s",
                        grouped(c.floor() as u64)
                    )),
                ));
            }
            out.push_str(&format!(
                "| **{} a second** | | | | | **{}** |\n",
                load.operation,
                grouped(load.per_second().floor() as u64)
            ));
        }
    }
    out
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
        for images in SIZES {
            let now = after(images, shards);
            // BENCHMARKS.md: "each ≤ 1 KB", "a pick is 3 shard items and 2 slots".
            assert!(
                now.largest_item <= 1024,
                "{images}: largest item {} bytes",
                now.largest_item
            );
            assert_eq!(now.pick_round_trips, 2);
            assert_eq!(now.pick_rcu, 5.0, "{images}: {now:?}");
            assert_eq!(now.pick_rcu_worst_expected, 3.0 + 2.0 * 4.0 / 3.0, "{images}");
            assert_eq!(now.upload_wcu, 6.0, "{images}: {} WCU an upload", now.upload_wcu);
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
    fn a_label_takes_the_uploads_and_picks_the_docs_promise() {
        let loads = partition_load(WriteShards::default());
        let [upload, pick, delete] = [&loads[0], &loads[1], &loads[2]];
        assert_eq!(
            (upload.operation, pick.operation, delete.operation),
            ("upload", "pick", "delete")
        );
        assert_eq!(upload.operations, 48, "one image per write shard and row partition");
        // Every upload reads 2 items and writes 3, on three kinds of key.
        assert_eq!((upload.items_read, upload.items_written), (2.0, 3.0));
        let shapes: Vec<(&str, &str)> = upload.families.iter().map(|f| (f.table, f.shape.as_str())).collect();
        assert_eq!(
            shapes,
            [
                ("chunkInfoTable", "cat#·"),
                ("chunkInfoTable", "cat#·#·#·"),
                ("imageChunksTable", "cat#·")
            ]
        );
        // The shard items bind: 3 values, each 1/3 of the uploads at 2 WCU (500/s each).
        assert_eq!(upload.families[0].values, 3);
        assert_eq!(upload.families[0].ceiling, Some(1500.0));
        assert_eq!(upload.families[1].ceiling, None, "each upload's slot is its own key");
        // The rows: 16 values, each 1/16 of the uploads.
        assert_eq!(upload.families[2].values, 16);
        assert_eq!(upload.families[2].ceiling, Some(8000.0));
        assert_eq!(upload.per_second(), 1500.0);
        assert!(upload.per_second() >= 1000.0, "the issue's floor");
        // Every pick reads every shard item once: 3,000 RCU a second each.
        assert_eq!(pick.per_second(), 3000.0);
        assert!(delete.per_second() >= 1000.0, "{delete:?}");
    }

    #[test]
    fn rows_under_one_key_would_cap_a_label_at_500_uploads() {
        // What the layout before rows were spread did: every row of a label under `cat`.
        let loads = partition_load(WriteShards::default());
        let row_wcu_each = loads[0].families[2].busiest_wcu / loads[0].families[2].busiest_operations as f64;
        assert_eq!(PARTITION_WCU / row_wcu_each, 500.0);
    }

    #[test]
    fn more_shards_take_more_uploads_until_the_rows_bind() {
        let per_second = |shards| partition_load(WriteShards::new(shards).unwrap())[0].per_second();
        assert_eq!(per_second(1), 500.0, "one shard item cannot take 1,000/s");
        assert_eq!(per_second(8), 4000.0);
        assert_eq!(per_second(32), 8000.0, "16 row partitions take 8,000/s");
        let picks = |shards| partition_load(WriteShards::new(shards).unwrap())[1].per_second();
        assert_eq!(picks(8), 3000.0, "each pick still reads each shard item once");
        assert_eq!(
            after(1_000_000, WriteShards::new(8).unwrap()).pick_rcu
                - after(1_000_000, WriteShards::new(1).unwrap()).pick_rcu,
            7.0
        );
    }

    #[test]
    fn benchmarks_shows_exactly_what_the_model_computes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
        let text = std::fs::read_to_string(path).unwrap();
        let begin = "<!-- capacity: cargo run --example capacity -->\n";
        let end = "<!-- /capacity -->";
        let start = text.find(begin).expect("BENCHMARKS.md marks the model's tables") + begin.len();
        let stop = start + text[start..].find(end).expect("and their end");
        assert_eq!(
            &text[start..stop],
            scale_tables(WriteShards::default()),
            "BENCHMARKS.md's Scale tables differ from the model: paste `cargo run --example capacity`"
        );
    }
}
