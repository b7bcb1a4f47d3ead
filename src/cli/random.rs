//! `pawql random --label [--count] [-o DIR]`: weighted-random images, listed or saved.

use std::path::PathBuf;

use clap::Args;

use super::Remote;
use crate::client::operations::{random_images, RandomImages};

#[derive(Debug, Args)]
pub struct RandomArgs {
    #[arg(long)]
    pub label: String,
    /// How many independent draws (repeats possible), at most 100.
    #[arg(long, default_value_t = 1)]
    pub count: i64,
    /// Save the images into this folder as `<id>.<ext>` instead of only listing them.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn random(args: RandomArgs) -> anyhow::Result<()> {
    let client = args.remote.client()?;
    let variables = random_images::Variables {
        label: args.label.clone(),
        count: args.count,
    };
    let images = client.run::<RandomImages>(variables).await?.random_images;
    if images.is_empty() {
        eprintln!("no images under `{}` yet", args.label);
    }
    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir)?;
    }
    for image in images {
        match &args.output {
            None => println!("{}\tweight {}\t{}", image.id, image.weight, image.url),
            Some(dir) => {
                let (bytes, content_type) = client.fetch(&image.url).await?;
                let path = dir.join(format!("{}.{}", image.id, extension_of(&content_type)));
                std::fs::write(&path, bytes)?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

fn extension_of(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        _ => "bin",
    }
}
