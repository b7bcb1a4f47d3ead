//! Image identity and the catalogue record of one image: its facts, the sizes of its variants,
//! and its place in its label's chunks (a [`Slot`]).
//!
//! An image id is `{label}-{sha256 of the bytes}`, so uploading the same bytes twice under
//! one label names the same image (idempotent re-upload), and the same bytes under two
//! labels are two images. The storage key starts with the hash (`{sha256}/{label}`): a
//! high-cardinality prefix spreads S3 request load.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::label::{truncate_for_message, Label, LabelSet};
use super::weight::Weight;
use crate::error::{ApiError, ApiResult};

/// SHA-256 of an image's bytes, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn of(bytes: &[u8]) -> Sha256Hex {
        use sha2::Digest;
        Sha256Hex(hex::encode(sha2::Sha256::digest(bytes)))
    }

    pub fn parse(text: &str) -> Option<Sha256Hex> {
        (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Sha256Hex(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Stored records (scans) hold ids as their text, and reading one back checks it again, so a
// record in hand always has a well-formed id and nothing downstream re-parses it.
impl Serialize for Sha256Hex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sha256Hex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Sha256Hex::parse(&text).ok_or_else(|| de::Error::custom(format!("{text:?} is not a SHA-256 in hex")))
    }
}

/// The identity of an image: its label and the hash of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId {
    pub label: Label,
    pub sha256: Sha256Hex,
}

impl ImageId {
    pub fn new(label: Label, sha256: Sha256Hex) -> ImageId {
        ImageId { label, sha256 }
    }

    /// Parses an id a client sent. A malformed id is a client error, not "not found".
    pub fn parse(text: &str, labels: &LabelSet) -> ApiResult<ImageId> {
        let malformed = || {
            ApiError::BadUserInput(format!(
                "malformed image id {:?}: expected <label>-<64 hex digits>",
                truncate_for_message(text)
            ))
        };
        let (label, hash) = text.rsplit_once('-').ok_or_else(malformed)?;
        let sha256 = Sha256Hex::parse(hash).ok_or_else(malformed)?;
        let label = labels.parse(label)?;
        Ok(ImageId { label, sha256 })
    }

    /// The object key in the image store and the `s3key` sort key of `imageChunksTable`.
    pub fn storage_key(&self) -> String {
        format!("{}/{}", self.sha256.as_str(), self.label)
    }

    /// Where a sized variant of the image is stored: `variants/<sha256>/<label>/<size>`
    /// (content-addressed like the original, under one prefix a CDN may read).
    pub fn variant_key(&self, size: ImageSize) -> String {
        format!("variants/{}/{}/{}", self.sha256.as_str(), self.label, size.as_str())
    }

    /// Inverse of [`ImageId::storage_key`], for rows read back from a table.
    pub fn from_storage_key(key: &str, labels: &LabelSet) -> anyhow::Result<ImageId> {
        let (hash, label) = key
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("storage key {key:?} has no '/'"))?;
        let sha256 = Sha256Hex::parse(hash).ok_or_else(|| anyhow::anyhow!("storage key {key:?} has a bad hash"))?;
        let label = labels
            .parse(label)
            .map_err(|_| anyhow::anyhow!("storage key {key:?} names an unconfigured label"))?;
        Ok(ImageId { label, sha256 })
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.label, self.sha256.as_str())
    }
}

impl Serialize for ImageId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = text.rsplit_once('-').and_then(|(label, hash)| {
            Some(ImageId {
                label: Label::from_stored(label)?,
                sha256: Sha256Hex::parse(hash)?,
            })
        });
        parsed.ok_or_else(|| de::Error::custom(format!("{text:?} is not an image id")))
    }
}

/// The accepted image formats. The bytes decide which one an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Jpeg,
    Png,
    WebP,
}

impl ImageKind {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::WebP => "image/webp",
        }
    }

    pub fn from_content_type(content_type: &str) -> Option<ImageKind> {
        match content_type {
            "image/jpeg" => Some(ImageKind::Jpeg),
            "image/png" => Some(ImageKind::Png),
            "image/webp" => Some(ImageKind::WebP),
            _ => None,
        }
    }
}

/// What validation learned from the bytes themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub kind: ImageKind,
    /// Width and height as displayed, i.e. after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub byte_size: u64,
    pub sha256: Sha256Hex,
}

/// One row of `imageChunksTable`: an image, its weight and where it is filed.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub id: ImageId,
    /// The write shard whose chunk info counts the image.
    pub shard: u32,
    /// Its slot (chunk and place in it) while in the random pool; `None` while held.
    pub slot: Option<Slot>,
    pub weight: Weight,
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    pub byte_size: u64,
    pub created_at: DateTime<Utc>,
    /// Why the image is held out of the random pool (a cat awaiting, or failing, its scan
    /// under the label check); `None`: it is in the pool.
    pub hold: Option<crate::domain::hold::Hold>,
    /// Its stored sized variants, smallest first (`variants.rs`); a size not here is served
    /// by the original.
    pub variants: Vec<VariantFacts>,
    /// Its BlurHash; `None` for an image stored before variants (until `pawql variants`).
    pub placeholder: Option<String>,
}

impl ImageRecord {
    /// What the image adds to its chunk's weight sum: its weight while in the pool, nothing
    /// while held (a held image is never drawn).
    pub fn pooled_nanos(&self) -> u64 {
        if self.hold.is_some() {
            0
        } else {
            self.weight.nanos()
        }
    }
}

/// An image about to be added: everything but its place, which the tables choose.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImage {
    pub id: ImageId,
    pub weight: Weight,
    pub facts: ImageFacts,
    pub created_at: DateTime<Utc>,
    pub hold: Option<crate::domain::hold::Hold>,
    pub variants: Vec<VariantFacts>,
    pub placeholder: Option<String>,
}

impl NewImage {
    /// The row, not yet filed: `refile` (`domain/chunks.rs`) gives it its place.
    pub fn into_record(self) -> ImageRecord {
        ImageRecord {
            id: self.id,
            shard: 0,
            slot: None,
            weight: self.weight,
            kind: self.facts.kind,
            width: self.facts.width,
            height: self.facts.height,
            byte_size: self.facts.byte_size,
            created_at: self.created_at,
            hold: self.hold,
            variants: self.variants,
            placeholder: self.placeholder,
        }
    }
}

/// A small `cat` image numbered `n`, in the pool, not yet filed: for the domain's tests.
#[cfg(test)]
pub(crate) fn sample_record(n: u32, weight: Weight) -> ImageRecord {
    let cat = LabelSet::default_pets().parse("cat").expect("cat");
    ImageRecord {
        id: ImageId::new(cat, Sha256Hex::of(&n.to_be_bytes())),
        shard: 0,
        slot: None,
        weight,
        kind: ImageKind::Png,
        width: 1,
        height: 1,
        byte_size: 1,
        created_at: "2026-11-30T00:00:00Z".parse().expect("a time"),
        hold: None,
        variants: Vec::new(),
        placeholder: None,
    }
}

/// The sizes a client can ask for (`Image.url(size:)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageSize {
    Thumb,
    Small,
    Medium,
    Original,
}

impl ImageSize {
    /// The sizes stored apart from the original, smallest first.
    pub const VARIANTS: [ImageSize; 3] = [ImageSize::Thumb, ImageSize::Small, ImageSize::Medium];

    /// The longest side a variant of this size has at most; `None`: the original.
    pub fn longest_side(self) -> Option<u32> {
        match self {
            ImageSize::Thumb => Some(256),
            ImageSize::Small => Some(640),
            ImageSize::Medium => Some(1280),
            ImageSize::Original => None,
        }
    }

    /// The name in storage keys, rows and `?size=`: `thumb`, `small`, `medium`, `original`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageSize::Thumb => "thumb",
            ImageSize::Small => "small",
            ImageSize::Medium => "medium",
            ImageSize::Original => "original",
        }
    }

    /// A size by name, as `?size=` and storage spell it (any case).
    pub fn parse(name: &str) -> Option<ImageSize> {
        [
            ImageSize::Thumb,
            ImageSize::Small,
            ImageSize::Medium,
            ImageSize::Original,
        ]
        .into_iter()
        .find(|size| {
            size.as_str().eq_ignore_ascii_case(name) || (name.eq_ignore_ascii_case("med") && *size == ImageSize::Medium)
        })
    }
}

/// A stored variant's facts, kept on the image row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantFacts {
    pub size: ImageSize,
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    pub byte_size: u64,
}

/// One slot: the `index`th image of chunk `chunk` of shard `shard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub shard: u32,
    pub chunk: u32,
    pub index: u64,
}

impl Slot {
    /// The key of the slot's item: `cat#0#57#12`.
    pub fn key(&self, label: &str) -> String {
        format!("{label}#{}#{}#{}", self.shard, self.chunk, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_storage_key_round_trip() {
        let labels = LabelSet::default_pets();
        let id = ImageId::new(labels.parse("cat").unwrap(), Sha256Hex::of(b"meow"));
        let text = id.to_string();
        assert!(text.starts_with("cat-"));
        assert_eq!(ImageId::parse(&text, &labels).unwrap(), id);
        let key = id.storage_key();
        assert!(key.starts_with(id.sha256.as_str()));
        assert_eq!(ImageId::from_storage_key(&key, &labels).unwrap(), id);
    }

    #[test]
    fn ids_of_the_wrong_shape_are_bad_input() {
        let labels = LabelSet::default_pets();
        let hash = Sha256Hex::of(b"x");
        for bad in [
            String::new(),
            "cat".into(),
            format!("cat{}", hash.as_str()),
            format!("cat-{}", &hash.as_str()[1..]),
            format!("cat-{}", hash.as_str().to_uppercase()),
            format!("bird-{}", hash.as_str()),
            format!("cat-../../{}", hash.as_str()),
        ] {
            let err = ImageId::parse(&bad, &labels).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT", "{bad:?}");
        }
    }
}
