//! `pawql upload <files…> --label --weight`: each file reported on its own line.
//!
//! Files up to [`DIRECT_UPLOAD_BYTES`] go in the GraphQL request itself; larger ones take the
//! presigned path (`requestUpload`, a PUT of the bytes, `completeUpload`), because a Lambda
//! takes at most 6 MB a request and API Gateway sends a file base64-encoded (4/3 its size):
//! about 4.4 MB of file is the most that can arrive in a request on AWS.

use std::path::PathBuf;

use clap::Args;

use super::{exit_status, files::file_name, Remote};
use crate::client::operations::{
    complete_upload, request_upload, upload_image, CompleteUpload, RequestUpload, UploadImage,
};
use crate::client::PawqlClient;

/// The largest file sent inside the GraphQL request; larger ones are PUT to an upload URL.
pub const DIRECT_UPLOAD_BYTES: usize = 4 * 1024 * 1024;
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
            Ok(bytes) if bytes.len() > DIRECT_UPLOAD_BYTES => {
                match upload_presigned(&client, &args.label, args.weight, bytes).await {
                    Ok(image) => {
                        println!(
                            "{}\t{}\t(presigned)\tweight {}\t{}",
                            path.display(),
                            image.id,
                            image.weight,
                            image.url
                        );
                    }
                    Err(error) => {
                        failed += 1;
                        eprintln!("{}\tFAILED\t{error}", path.display());
                    }
                }
                continue;
            }
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

/// `requestUpload`, the PUT, `completeUpload`: the way in for files too large for a request.
async fn upload_presigned(
    client: &PawqlClient,
    label: &str,
    weight: Option<f64>,
    bytes: Vec<u8>,
) -> anyhow::Result<complete_upload::CompleteUploadCompleteUpload> {
    let grant = client
        .run::<RequestUpload>(request_upload::Variables {
            label: label.to_owned(),
            byte_size: i64::try_from(bytes.len())?,
        })
        .await?
        .request_upload;
    client.put_file(&grant.upload_url, bytes).await?;
    let filed = client
        .run::<CompleteUpload>(complete_upload::Variables {
            ticket: grant.ticket,
            weight,
        })
        .await?;
    Ok(filed.complete_upload)
}
