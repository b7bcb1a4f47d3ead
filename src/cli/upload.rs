//! `pawql upload <files…> --label --weight`: each file reported on its own line.

use std::path::PathBuf;

use clap::Args;

use super::{exit_status, files::file_name, Remote};
use crate::client::operations::{upload_image, UploadImage};
use crate::client::Attachment;

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Image files (JPEG, PNG or WebP).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, default_value = "cat")]
    pub label: String,
    /// 0 < weight <= 1 (default 0.5): how likely the image is to be drawn.
    #[arg(long)]
    pub weight: Option<f64>,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    let client = args.remote.client()?;
    let mut failed = 0;
    for path in &args.files {
        let outcome = match std::fs::read(path) {
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(bytes) => {
                let attachment = Attachment {
                    file_name: file_name(path),
                    bytes,
                };
                let variables = upload_image::Variables {
                    image: (),
                    label: args.label.clone(),
                    weight: args.weight,
                };
                client
                    .run_with_file::<UploadImage>(variables, &attachment)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        match outcome {
            Ok(data) => {
                let image = data.upload;
                println!(
                    "{}\t{}\t{}x{}\tweight {}\t{}",
                    path.display(),
                    image.id,
                    image.width,
                    image.height,
                    image.weight,
                    image.url
                );
            }
            Err(error) => {
                failed += 1;
                eprintln!("{}\tFAILED\t{error}", path.display());
            }
        }
    }
    exit_status(failed, args.files.len())
}
