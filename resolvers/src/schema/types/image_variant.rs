//! `ImageSize` and `ImageVariant`: the sizes a phone asks for (`Image.url(size:)`) and the
//! variants an image has (`Image.variants`), see `domain/variants.rs`.

use async_graphql::{Context, Enum, Object, Result, ResultExt};

use crate::catalog::Catalog;
use crate::domain::image::ImageRecord;
use crate::domain::variants::{ImageSize as Size, VariantFacts};

/// A size of an image: its longest side at most 256 (`THUMB`), 640 (`SMALL`), 1280
/// (`MEDIUM`) pixels, never upscaled; or the file as uploaded (`ORIGINAL`).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ImageSize {
    Thumb,
    Small,
    Medium,
    Original,
}

impl From<ImageSize> for Size {
    fn from(size: ImageSize) -> Size {
        match size {
            ImageSize::Thumb => Size::Thumb,
            ImageSize::Small => Size::Small,
            ImageSize::Medium => Size::Medium,
            ImageSize::Original => Size::Original,
        }
    }
}

impl From<Size> for ImageSize {
    fn from(size: Size) -> ImageSize {
        match size {
            Size::Thumb => ImageSize::Thumb,
            Size::Small => ImageSize::Small,
            Size::Medium => ImageSize::Medium,
            Size::Original => ImageSize::Original,
        }
    }
}

/// One size of an image as a client would fetch it. Sizes the original already fits (or
/// would not shrink) are the original itself: their `url` is its URL.
pub struct ImageVariant {
    pub(super) record: ImageRecord,
    /// `None`: the original serves this size.
    pub(super) facts: Option<VariantFacts>,
    pub(super) size: Size,
}

#[Object]
impl ImageVariant {
    async fn size(&self) -> ImageSize {
        self.size.into()
    }

    async fn width(&self) -> u32 {
        self.facts.as_ref().map_or(self.record.width, |f| f.width)
    }

    async fn height(&self) -> u32 {
        self.facts.as_ref().map_or(self.record.height, |f| f.height)
    }

    /// JPEG, or PNG where the image has transparency; the original's type where it serves.
    async fn content_type(&self) -> &'static str {
        self.facts.as_ref().map_or(self.record.kind, |f| f.kind).content_type()
    }

    async fn byte_size(&self) -> u64 {
        self.facts.as_ref().map_or(self.record.byte_size, |f| f.byte_size)
    }

    async fn url(&self, ctx: &Context<'_>) -> Result<String> {
        ctx.data_unchecked::<Catalog>()
            .image_url(&self.record, self.size)
            .await
            .extend()
    }
}
