//! How image rows are written in redb: JSON with the `imageChunksTable` field names of
//! the petAPI seed, so a dump reads like the DynamoDB table.

use chrono::{DateTime, Utc};
use resolvers::domain::chunks::Slot;
use resolvers::domain::hold::Hold;
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord};
use resolvers::domain::label::LabelSet;
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::domain::weight::{decimal_string_to_nanos, Weight};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredImage {
    label: String,
    s3key: String,
    /// The write shard (absent in rows written before write shards: `0`, and re-filed when
    /// the store is opened).
    #[serde(default)]
    shard: u32,
    /// The chunk and the slot in it, while the image is in the random pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunk_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slot: Option<u64>,
    /// Exact decimal, as DynamoDB would hold it.
    weight: String,
    content_type: String,
    width: u32,
    height: u32,
    byte_size: u64,
    created_at: DateTime<Utc>,
    /// Absent while the image is in the random pool (as on DynamoDB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held_reason: Option<String>,
    /// The stored sized variants (absent in rows written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    variants: Vec<StoredVariant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    placeholder: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredVariant {
    size: String,
    content_type: String,
    width: u32,
    height: u32,
    byte_size: u64,
}

pub fn encode(record: &ImageRecord) -> Vec<u8> {
    let stored = StoredImage {
        label: record.id.label.to_string(),
        s3key: record.id.storage_key(),
        shard: record.shard,
        chunk_number: record.slot.map(|slot| slot.chunk),
        slot: record.slot.map(|slot| slot.index),
        weight: record.weight.to_decimal_string(),
        content_type: record.kind.content_type().to_owned(),
        width: record.width,
        height: record.height,
        byte_size: record.byte_size,
        created_at: record.created_at,
        held_reason: record.hold.as_ref().map(ToString::to_string),
        variants: record
            .variants
            .iter()
            .map(|v| StoredVariant {
                size: v.size.as_str().to_owned(),
                content_type: v.kind.content_type().to_owned(),
                width: v.width,
                height: v.height,
                byte_size: v.byte_size,
            })
            .collect(),
        placeholder: record.placeholder.clone(),
    };
    serde_json::to_vec(&stored).expect("an image row always serialises")
}

pub fn decode(bytes: &[u8], labels: &LabelSet) -> anyhow::Result<ImageRecord> {
    let stored: StoredImage = serde_json::from_slice(bytes)?;
    let id = ImageId::from_storage_key(&stored.s3key, labels)?;
    anyhow::ensure!(id.label.as_str() == stored.label, "row label and s3key disagree");
    Ok(ImageRecord {
        id,
        shard: stored.shard,
        slot: match (stored.chunk_number, stored.slot) {
            (Some(chunk), Some(index)) => Some(Slot {
                shard: stored.shard,
                chunk,
                index,
            }),
            _ => None,
        },
        weight: Weight::from_nanos(decimal_string_to_nanos(&stored.weight)?)?,
        kind: ImageKind::from_content_type(&stored.content_type)
            .ok_or_else(|| anyhow::anyhow!("stored content type {:?}", stored.content_type))?,
        width: stored.width,
        height: stored.height,
        byte_size: stored.byte_size,
        created_at: stored.created_at,
        hold: stored.held_reason.as_deref().map(Hold::parse),
        variants: stored
            .variants
            .iter()
            .map(|v| {
                Ok(VariantFacts {
                    size: ImageSize::parse(&v.size)
                        .ok_or_else(|| anyhow::anyhow!("stored variant size {:?}", v.size))?,
                    kind: ImageKind::from_content_type(&v.content_type)
                        .ok_or_else(|| anyhow::anyhow!("stored variant type {:?}", v.content_type))?,
                    width: v.width,
                    height: v.height,
                    byte_size: v.byte_size,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        placeholder: stored.placeholder,
    })
}
