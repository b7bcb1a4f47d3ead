//! DynamoDB items of the two chunk tables, with the attribute names of the petAPI seed.
//!
//! Numbers are DynamoDB `N` values, which are exact decimals: a weight is stored as its exact
//! decimal string (`0.5`, `0.000000001`), never through a float. A shard's chunk info carries
//! `revision`, a counter every write bumps under a condition, which is what makes the
//! optimistic writes safe. `chunkInfoTable` holds two kinds of items (see
//! `resolvers/src/domain/chunks.rs`): a write shard's chunk info (`cat#0`) and a slot
//! (`cat#0#57#12`, a copy of the image row filed there).
//!
//! A label's rows in `imageChunksTable` are spread over [`ROW_PARTITIONS`] partition key
//! values (`label` = `cat#7`), the partition fixed by the image's hash, so `image(id)` stays
//! one `GetItem` by key while a label's uploads and deletes no longer all write one partition
//! key (DynamoDB serves each at most 1,000 WCU a second: docs/aws-rules.md, D1). A shard item
//! says it belongs to this layout with `rowPartitions`; one without it is a label whose rows
//! still sit under the bare label (`cat`), which `pawql migrate` moves.

use resolvers::domain::hold::Hold;
use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use resolvers::domain::chunks::{shard_key, ShardInfo, Slot};
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord};
use resolvers::domain::label::LabelSet;
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::domain::weight::{decimal_string_to_nanos, Weight};
use resolvers::ports::MigrationPending;

pub type Item = HashMap<String, AttributeValue>;

/// The image row attribute holding why an image is out of the random pool; absent while in it.
pub const HELD_REASON: &str = "heldReason";

/// A shard's chunk info as read, with the revision a conditional write must find unchanged
/// (0: the item does not exist yet).
#[derive(Debug, Clone)]
pub struct VersionedShard {
    pub info: ShardInfo,
    pub revision: u64,
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn numbers<T: std::fmt::Display>(values: &[T]) -> AttributeValue {
    AttributeValue::L(values.iter().map(n).collect())
}

fn get<'a>(item: &'a Item, name: &str) -> anyhow::Result<&'a AttributeValue> {
    item.get(name).with_context(|| format!("attribute {name} missing"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> anyhow::Result<&'a str> {
    get(item, name)?
        .as_s()
        .map(String::as_str)
        .map_err(|_| anyhow::anyhow!("attribute {name} is not a string"))
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text = get(item, name)?
        .as_n()
        .map_err(|_| anyhow::anyhow!("attribute {name} is not a number"))?;
    text.parse().with_context(|| format!("attribute {name} = {text}"))
}

fn get_numbers<T: std::str::FromStr>(item: &Item, name: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let list = get(item, name)?
        .as_l()
        .map_err(|_| anyhow::anyhow!("attribute {name} is not a list"))?;
    list.iter()
        .map(|value| {
            let text = value.as_n().map_err(|_| anyhow::anyhow!("{name} holds a non-number"))?;
            text.parse().with_context(|| format!("{name} element {text}"))
        })
        .collect()
}

/// How many partition key values a label's rows are spread over. An upload or a delete
/// writes its row in a transaction (2 WCU for a row up to 1 KB), so each value takes 500 of
/// them a second and sixteen take 8,000: more than the write shards' items take at up to 16
/// shards (`capacity.rs` computes both). Reading every row of a label (`pawql migrate`,
/// `pawql variants`) costs one `Query` per value, which is why it is not larger. Changing it
/// moves every row: the shard items record it (`rowPartitions`) so a stage written with
/// another value is recognised.
pub const ROW_PARTITIONS: u32 = 16;

/// The shard-item attribute saying which row layout its label is in.
pub const ROW_PARTITIONS_ATTRIBUTE: &str = "rowPartitions";

/// The partition an image's row lives in: from a part of its hash the write shard does not
/// use (`WriteShards::shard_of` reads the first eight hex digits), so the two spread
/// independently.
pub fn row_partition(id: &ImageId) -> u32 {
    let digits = &id.sha256.as_str()[8..16];
    u32::from_str_radix(digits, 16).expect("a sha256 is hex") % ROW_PARTITIONS
}

/// The partition key value of the rows of `label` in `partition`: `cat#7`.
pub fn row_partition_key(label: &str, partition: u32) -> String {
    format!("{label}#{partition}")
}

/// The primary key of an image row.
pub fn image_key(id: &ImageId) -> Item {
    Item::from([
        (
            "label".to_owned(),
            s(row_partition_key(id.label.as_str(), row_partition(id))),
        ),
        ("s3key".to_owned(), s(id.storage_key())),
    ])
}

/// The key of a `chunkInfoTable` item: a shard's chunk info (`cat#0`), a slot
/// (`cat#0#57#12`), or a label's chunk info before write shards (`cat`).
pub fn info_key(key: &str) -> Item {
    Item::from([("label".to_owned(), s(key))])
}

/// An image's attributes besides `label`: shared by its row and its slot's copy.
fn image_attributes(record: &ImageRecord) -> Item {
    let mut item = Item::from([
        ("s3key".to_owned(), s(record.id.storage_key())),
        ("shard".to_owned(), n(record.shard)),
        ("weight".to_owned(), n(record.weight.to_decimal_string())),
        ("contentType".to_owned(), s(record.kind.content_type())),
        ("width".to_owned(), n(record.width)),
        ("height".to_owned(), n(record.height)),
        ("byteSize".to_owned(), n(record.byte_size)),
        ("createdAt".to_owned(), s(record.created_at.to_rfc3339())),
    ]);
    if let Some(slot) = record.slot {
        item.insert("chunkNumber".to_owned(), n(slot.chunk));
        item.insert("slot".to_owned(), n(slot.index));
    }
    if let Some(reason) = &record.hold {
        item.insert(HELD_REASON.to_owned(), s(reason.to_string()));
    }
    if !record.variants.is_empty() {
        let variants = record
            .variants
            .iter()
            .map(|v| {
                AttributeValue::M(Item::from([
                    ("size".to_owned(), s(v.size.as_str())),
                    ("contentType".to_owned(), s(v.kind.content_type())),
                    ("width".to_owned(), n(v.width)),
                    ("height".to_owned(), n(v.height)),
                    ("byteSize".to_owned(), n(v.byte_size)),
                ]))
            })
            .collect();
        item.insert("variants".to_owned(), AttributeValue::L(variants));
    }
    if let Some(placeholder) = &record.placeholder {
        item.insert("placeholder".to_owned(), s(placeholder));
    }
    item
}

/// The variants an image row lists (none in rows written before variants).
fn variants_of(item: &Item) -> anyhow::Result<Vec<VariantFacts>> {
    let Some(list) = item.get("variants") else {
        return Ok(Vec::new());
    };
    let list = list.as_l().map_err(|_| anyhow::anyhow!("variants is not a list"))?;
    list.iter()
        .map(|value| {
            let variant = value.as_m().map_err(|_| anyhow::anyhow!("a variant is not a map"))?;
            let size = get_s(variant, "size")?;
            let content_type = get_s(variant, "contentType")?;
            Ok(VariantFacts {
                size: ImageSize::parse(size).with_context(|| format!("variant size {size:?}"))?,
                kind: ImageKind::from_content_type(content_type)
                    .with_context(|| format!("variant content type {content_type:?}"))?,
                width: get_n(variant, "width")?,
                height: get_n(variant, "height")?,
                byte_size: get_n(variant, "byteSize")?,
            })
        })
        .collect()
}

/// An image's row in `imageChunksTable`.
pub fn image_item(record: &ImageRecord) -> Item {
    let mut item = image_attributes(record);
    item.insert(
        "label".to_owned(),
        s(row_partition_key(record.id.label.as_str(), row_partition(&record.id))),
    );
    item
}

/// The copy of an image kept in its slot's `chunkInfoTable` item, so a pick reads it by key.
pub fn slot_item(label: &str, slot: Slot, record: &ImageRecord) -> Item {
    let mut item = image_attributes(record);
    item.insert("label".to_owned(), s(slot.key(label)));
    item
}

/// An image row, found under its partition key or under the bare label (where `pawql migrate`
/// reads the rows it moves); a row written before write shards (no `shard`) is a label
/// awaiting `pawql migrate`.
pub fn image_record(item: &Item, labels: &LabelSet) -> anyhow::Result<ImageRecord> {
    let record = image_of(item, labels)?;
    let key = get_s(item, "label")?;
    let label = record.id.label.as_str();
    anyhow::ensure!(
        key == label || key == row_partition_key(label, row_partition(&record.id)),
        "row key {key} and s3key {} disagree",
        record.id.storage_key()
    );
    Ok(record)
}

/// The image a slot item holds a copy of.
pub fn slot_record(item: &Item, labels: &LabelSet) -> anyhow::Result<ImageRecord> {
    image_of(item, labels)
}

fn image_of(item: &Item, labels: &LabelSet) -> anyhow::Result<ImageRecord> {
    let s3key = get_s(item, "s3key")?;
    let id = ImageId::from_storage_key(s3key, labels)?;
    if !item.contains_key("shard") {
        return Err(MigrationPending(id.label.to_string()).into());
    }
    let weight = get(item, "weight")?
        .as_n()
        .map_err(|_| anyhow::anyhow!("weight is not a number"))?;
    let content_type = get_s(item, "contentType")?;
    let created_at: DateTime<Utc> = DateTime::parse_from_rfc3339(get_s(item, "createdAt")?)
        .context("createdAt")?
        .with_timezone(&Utc);
    let shard = get_n(item, "shard")?;
    let slot = match (item.contains_key("chunkNumber"), item.contains_key("slot")) {
        (true, true) => Some(Slot {
            shard,
            chunk: get_n(item, "chunkNumber")?,
            index: get_n(item, "slot")?,
        }),
        _ => None,
    };
    Ok(ImageRecord {
        id,
        shard,
        slot,
        weight: Weight::from_nanos(decimal_string_to_nanos(weight)?)?,
        kind: ImageKind::from_content_type(content_type)
            .with_context(|| format!("stored content type {content_type:?}"))?,
        width: get_n(item, "width")?,
        height: get_n(item, "height")?,
        byte_size: get_n(item, "byteSize")?,
        created_at,
        hold: item
            .get(HELD_REASON)
            .map(|_| get_s(item, HELD_REASON).map(Hold::parse))
            .transpose()?,
        variants: variants_of(item)?,
        placeholder: item
            .get("placeholder")
            .map(|_| get_s(item, "placeholder").map(str::to_owned))
            .transpose()?,
    })
}

/// A shard's chunk-info item.
pub fn shard_item(info: &ShardInfo, revision: u64) -> Item {
    Item::from([
        ("label".to_owned(), s(shard_key(&info.label, info.shard))),
        ("shard".to_owned(), n(info.shard)),
        ("chunkNumbers".to_owned(), numbers(&info.chunk_numbers)),
        ("chunkVolume".to_owned(), numbers(&info.chunk_volume)),
        ("chunkWeightSum".to_owned(), numbers(&info.chunk_weight_sum)),
        ("chunkCeiling".to_owned(), numbers(&info.chunk_ceiling)),
        ("heldVolume".to_owned(), n(info.held_volume)),
        ("revision".to_owned(), n(revision)),
        (ROW_PARTITIONS_ATTRIBUTE.to_owned(), n(ROW_PARTITIONS)),
    ])
}

/// A shard item as this code writes it. One without `rowPartitions` belongs to a label whose
/// rows are not spread yet: `MIGRATION_PENDING` until `pawql migrate` has moved them.
pub fn versioned_shard(item: &Item) -> anyhow::Result<VersionedShard> {
    let key = get_s(item, "label")?;
    let shard: u32 = get_n(item, "shard")?;
    let label = key
        .strip_suffix(&format!("#{shard}"))
        .with_context(|| format!("chunk info {key} does not end in its shard {shard}"))?;
    match item.get(ROW_PARTITIONS_ATTRIBUTE) {
        None => return Err(MigrationPending(label.to_owned()).into()),
        Some(_) => {
            let partitions: u32 = get_n(item, ROW_PARTITIONS_ATTRIBUTE)?;
            anyhow::ensure!(
                partitions == ROW_PARTITIONS,
                "chunk info {key}: rows spread over {partitions} partitions, this code reads {ROW_PARTITIONS}"
            );
        }
    }
    let info = ShardInfo {
        label: label.to_owned(),
        shard,
        chunk_numbers: get_numbers(item, "chunkNumbers")?,
        chunk_volume: get_numbers(item, "chunkVolume")?,
        chunk_weight_sum: get_numbers(item, "chunkWeightSum")?,
        chunk_ceiling: get_numbers(item, "chunkCeiling")?,
        held_volume: get_n(item, "heldVolume")?,
    };
    let chunks = info.chunk_numbers.len();
    anyhow::ensure!(
        [
            info.chunk_volume.len(),
            info.chunk_weight_sum.len(),
            info.chunk_ceiling.len()
        ] == [chunks; 3],
        "chunk info {key}: the per-chunk lists differ in length"
    );
    Ok(VersionedShard {
        info,
        revision: get_n(item, "revision")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use resolvers::domain::chunks::refile;
    use resolvers::domain::image::Sha256Hex;

    #[test]
    fn image_rows_slots_and_shards_round_trip_exactly() {
        let labels = LabelSet::default_pets();
        let cat = labels.parse("cat").unwrap();
        let record = ImageRecord {
            id: ImageId::new(cat.clone(), Sha256Hex::of(b"x")),
            shard: 0,
            slot: None,
            weight: Weight::from_nanos(1).unwrap(),
            kind: ImageKind::WebP,
            width: 640,
            height: 480,
            byte_size: 12345,
            created_at: "2026-11-24T10:00:00.123Z".parse().unwrap(),
            hold: None,
            variants: Vec::new(),
            placeholder: None,
        };
        let plan = refile(ShardInfo::empty("cat", 2), None, Some(record), None).unwrap();
        let record = plan.record.clone().unwrap();
        let slot = record.slot.unwrap();
        let item = image_item(&record);
        assert_eq!(item["weight"], n("0.000000001"), "weights are exact decimals");
        assert!(!item.contains_key(HELD_REASON));
        assert_eq!(image_record(&item, &labels).unwrap(), record);
        let copy = slot_item("cat", slot, &record);
        assert_eq!(copy["label"], s("cat#2#0#0"));
        assert_eq!(slot_record(&copy, &labels).unwrap(), record);
        let held = ImageRecord {
            hold: Some(Hold::NotACat { confidence: 0.01 }),
            slot: None,
            ..record.clone()
        };
        assert_eq!(image_record(&image_item(&held), &labels).unwrap(), held);

        let back = versioned_shard(&shard_item(&plan.info, 7)).unwrap();
        assert_eq!((back.info, back.revision), (plan.info, 7));
    }

    #[test]
    fn a_row_from_before_write_shards_asks_for_the_migration() {
        let labels = LabelSet::default_pets();
        let record = ImageRecord {
            id: ImageId::new(labels.parse("dog").unwrap(), Sha256Hex::of(b"x")),
            shard: 0,
            slot: None,
            weight: Weight::DEFAULT,
            kind: ImageKind::Png,
            width: 1,
            height: 1,
            byte_size: 1,
            created_at: "2026-11-24T10:00:00Z".parse().unwrap(),
            hold: None,
            variants: Vec::new(),
            placeholder: None,
        };
        let mut legacy = image_item(&record);
        legacy.remove("shard");
        legacy.insert("chunkNumber".to_owned(), n(4));
        let err = image_record(&legacy, &labels).unwrap_err();
        assert!(err.downcast_ref::<MigrationPending>().is_some(), "{err:#}");
    }
}
