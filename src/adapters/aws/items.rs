//! DynamoDB items of the two chunk tables, with the attribute names of the petAPI seed.
//!
//! Numbers are DynamoDB `N` values, which are exact decimals: a weight is stored as its exact
//! decimal string (`0.5`, `0.000000001`), never through a float. Chunk info carries one
//! attribute the seed did not have besides `chunkWeightSum`: `revision`, a counter every write
//! bumps under a condition, which is what makes the optimistic writes safe.

use resolvers::domain::hold::Hold;
use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use resolvers::domain::chunks::ChunkInfo;
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord};
use resolvers::domain::label::LabelSet;
use resolvers::domain::weight::{decimal_string_to_nanos, Weight};

pub type Item = HashMap<String, AttributeValue>;

/// The image row attribute holding why an image is out of the random pool; absent while in it.
pub const HELD_REASON: &str = "heldReason";

/// Chunk info as read, with the revision a conditional write must find unchanged.
#[derive(Debug, Clone)]
pub struct VersionedInfo {
    pub info: ChunkInfo,
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

/// The primary key of an image row.
pub fn image_key(id: &ImageId) -> Item {
    Item::from([
        ("label".to_owned(), s(id.label.as_str())),
        ("s3key".to_owned(), s(id.storage_key())),
    ])
}

/// The primary key of a chunk info item.
pub fn info_key(label: &str) -> Item {
    Item::from([("label".to_owned(), s(label))])
}

pub fn image_item(record: &ImageRecord) -> Item {
    let mut item = image_key(&record.id);
    item.extend([
        ("chunkNumber".to_owned(), n(record.chunk_number)),
        ("weight".to_owned(), n(record.weight.to_decimal_string())),
        ("contentType".to_owned(), s(record.kind.content_type())),
        ("width".to_owned(), n(record.width)),
        ("height".to_owned(), n(record.height)),
        ("byteSize".to_owned(), n(record.byte_size)),
        ("createdAt".to_owned(), s(record.created_at.to_rfc3339())),
    ]);
    if let Some(reason) = &record.hold {
        item.insert(HELD_REASON.to_owned(), s(reason.to_string()));
    }
    item
}

pub fn image_record(item: &Item, labels: &LabelSet) -> anyhow::Result<ImageRecord> {
    let s3key = get_s(item, "s3key")?;
    let id = ImageId::from_storage_key(s3key, labels)?;
    anyhow::ensure!(
        id.label.as_str() == get_s(item, "label")?,
        "row label and s3key disagree"
    );
    let weight = get(item, "weight")?
        .as_n()
        .map_err(|_| anyhow::anyhow!("weight is not a number"))?;
    let content_type = get_s(item, "contentType")?;
    let created_at: DateTime<Utc> = DateTime::parse_from_rfc3339(get_s(item, "createdAt")?)
        .context("createdAt")?
        .with_timezone(&Utc);
    Ok(ImageRecord {
        id,
        chunk_number: get_n(item, "chunkNumber")?,
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
    })
}

pub fn info_item(info: &ChunkInfo, revision: u64) -> Item {
    Item::from([
        ("label".to_owned(), s(info.label.as_str())),
        ("chunkNumber".to_owned(), n(info.chunk_number)),
        ("chunkMax".to_owned(), n(info.chunk_max)),
        ("chunkThreshold".to_owned(), n(info.chunk_threshold)),
        ("activeChunks".to_owned(), numbers(&info.active_chunks)),
        ("chunkVolume".to_owned(), numbers(&info.chunk_volume)),
        ("chunkWeightSum".to_owned(), numbers(&info.chunk_weight_sum)),
        ("revision".to_owned(), n(revision)),
    ])
}

pub fn versioned_info(item: &Item) -> anyhow::Result<VersionedInfo> {
    Ok(VersionedInfo {
        info: ChunkInfo {
            label: get_s(item, "label")?.to_owned(),
            chunk_number: get_n(item, "chunkNumber")?,
            chunk_max: get_n(item, "chunkMax")?,
            chunk_threshold: get_n(item, "chunkThreshold")?,
            active_chunks: get_numbers(item, "activeChunks")?,
            chunk_volume: get_numbers(item, "chunkVolume")?,
            chunk_weight_sum: get_numbers(item, "chunkWeightSum")?,
        },
        revision: get_n(item, "revision")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use resolvers::domain::chunks::ChunkSizing;
    use resolvers::domain::image::Sha256Hex;

    #[test]
    fn image_rows_and_chunk_info_round_trip_exactly() {
        let labels = LabelSet::default_pets();
        let cat = labels.parse("cat").unwrap();
        let record = ImageRecord {
            id: ImageId::new(cat.clone(), Sha256Hex::of(b"x")),
            chunk_number: 3,
            weight: Weight::from_nanos(1).unwrap(),
            kind: ImageKind::WebP,
            width: 640,
            height: 480,
            byte_size: 12345,
            created_at: "2026-11-24T10:00:00.123Z".parse().unwrap(),
            hold: None,
        };
        let item = image_item(&record);
        assert_eq!(item["weight"], n("0.000000001"), "weights are exact decimals");
        assert!(!item.contains_key(HELD_REASON));
        assert_eq!(image_record(&item, &labels).unwrap(), record);
        let held = ImageRecord {
            hold: Some(Hold::NotACat { confidence: 0.01 }),
            ..record
        };
        assert_eq!(image_record(&image_item(&held), &labels).unwrap(), held);

        let mut info = ChunkInfo::empty(&cat, ChunkSizing::default());
        info.add_image(0, Weight::DEFAULT.nanos()).unwrap();
        let back = versioned_info(&info_item(&info, 7)).unwrap();
        assert_eq!((back.info, back.revision), (info, 7));
    }
}
