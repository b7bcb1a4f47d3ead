//! The AWS resources of one stage, defined once: names, keys and indexes of the two chunk
//! tables, the bucket, and the SSM parameters that point the Lambda at them.
//!
//! `pawql provision` creates exactly this on an emulator (or a sandbox account), and a test
//! checks that `serverless.yml` declares the same tables, keys, index and parameter names, so
//! the local stack and the deployed one cannot drift apart.

use std::collections::HashMap;

use anyhow::Context;

/// The stage used when none is given (`PAWQL_STAGE`).
pub const DEFAULT_STAGE: &str = "dev";

/// Key attribute types, as DynamoDB names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    S,
    N,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
        }
    }
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub partition_key: (&'static str, KeyType),
    pub sort_key: (&'static str, KeyType),
    /// Projects only the keys (`KEYS_ONLY`) instead of whole items (`ALL`).
    pub keys_only: bool,
}

impl IndexSpec {
    /// DynamoDB's name of the projection.
    pub fn projection(&self) -> &'static str {
        if self.keys_only {
            "KEYS_ONLY"
        } else {
            "ALL"
        }
    }
}

/// One DynamoDB table: its name within a stage, keys and indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The seed's table name; the deployed table is `pawql-{stage}-{base_name}`.
    pub base_name: &'static str,
    /// SSM parameter (under `/pawql/{stage}/`) and environment variable naming the table.
    pub parameter: &'static str,
    pub env_var: &'static str,
    pub partition_key: (&'static str, KeyType),
    pub sort_key: Option<(&'static str, KeyType)>,
    pub indexes: Vec<IndexSpec>,
    /// A stream of new item images (what invokes the scan handler on AWS).
    pub stream: bool,
    /// The TTL attribute (epoch seconds), if items expire.
    pub ttl_attribute: Option<&'static str>,
}

impl TableSpec {
    pub fn name(&self, stage: &str) -> String {
        format!("pawql-{stage}-{}", self.base_name)
    }
}

/// `chunkInfoTable`: per label, one chunk-info item per write shard and one item per slot.
pub fn chunk_info_table() -> TableSpec {
    TableSpec {
        base_name: "chunkInfoTable",
        parameter: "chunkInfoTable",
        env_var: "PAWQL_CHUNK_INFO_TABLE",
        partition_key: ("label", KeyType::S),
        sort_key: None,
        indexes: Vec::new(),
        stream: false,
        ttl_attribute: None,
    }
}

/// `imageChunksTable`: one item per image. (No index: picks read slots by key; the layout
/// before write shards had `LabelChunkIndex`, which `pawql migrate` no longer needs.)
pub fn image_chunks_table() -> TableSpec {
    TableSpec {
        base_name: "imageChunksTable",
        parameter: "imageChunksTable",
        env_var: "PAWQL_IMAGE_CHUNKS_TABLE",
        partition_key: ("label", KeyType::S),
        sort_key: Some(("s3key", KeyType::S)),
        indexes: Vec::new(),
        stream: false,
        ttl_attribute: None,
    }
}

/// `scanTable`: one item per scan (id = SHA-256 of the bytes), streamed, expiring by TTL.
pub fn scan_table() -> TableSpec {
    TableSpec {
        base_name: "scanTable",
        parameter: "scanTable",
        env_var: "PAWQL_SCAN_TABLE",
        partition_key: ("id", KeyType::S),
        sort_key: None,
        indexes: vec![IndexSpec {
            name: super::UNFINISHED_SCANS_INDEX,
            partition_key: ("unfinishedShard", KeyType::S),
            sort_key: ("touchedAt", KeyType::N),
            keys_only: true,
        }],
        stream: true,
        ttl_attribute: Some("expiresAtEpoch"),
    }
}

/// Every table of a stage.
pub fn tables() -> Vec<TableSpec> {
    vec![chunk_info_table(), image_chunks_table(), scan_table()]
}

/// The environment variables that name a stage's resources (bucket, then each table): with all
/// of them set, SSM is not asked for names.
pub fn env_vars() -> Vec<&'static str> {
    std::iter::once(BUCKET_ENV_VAR)
        .chain(tables().into_iter().map(|table| table.env_var))
        .collect()
}

/// The bucket's SSM parameter and environment variable.
pub const BUCKET_PARAMETER: &str = "bucket";
/// Optional SecureStrings, comma-separated: the API keys (writes) and admin keys (debug data)
/// (see docs/access.md). Not created by `provision` or serverless.yml: secrets are set by their
/// owner (`aws ssm put-parameter --type SecureString`), never written into a template.
pub const API_KEYS_PARAMETER: &str = "apiKeys";
pub const ADMIN_KEYS_PARAMETER: &str = "adminKeys";
pub const BUCKET_ENV_VAR: &str = "PAWQL_BUCKET";

/// The bucket name `pawql provision` uses on an emulator. The deployed bucket has no fixed
/// name (CloudFormation picks a unique one, since bucket names are global across accounts);
/// the Lambda learns it from SSM either way.
pub fn default_bucket_name(stage: &str) -> String {
    format!("pawql-{stage}-images")
}

/// Where a stage's parameters live.
pub fn parameter_path(stage: &str) -> String {
    format!("/pawql/{stage}/")
}

/// What the AWS backend needs to find: resolved from SSM, overridden by the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub bucket: String,
    pub chunk_info_table: String,
    pub image_chunks_table: String,
    pub scan_table: String,
    /// The CDN in front of the bucket (`PAWQL_CDN_URL`, set by serverless.yml): image URLs
    /// are on it. `None`: presigned S3 URLs.
    pub cdn_url: Option<String>,
}

/// The environment variable naming the CDN in front of the bucket (optional).
pub const CDN_URL_ENV_VAR: &str = "PAWQL_CDN_URL";

impl Resources {
    /// The names `pawql provision` creates for a stage.
    pub fn for_stage(stage: &str) -> Resources {
        Resources {
            bucket: default_bucket_name(stage),
            chunk_info_table: chunk_info_table().name(stage),
            image_chunks_table: image_chunks_table().name(stage),
            scan_table: scan_table().name(stage),
            cdn_url: None,
        }
    }

    /// The SSM parameters (relative names) describing these resources.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        vec![
            (BUCKET_PARAMETER, self.bucket.clone()),
            (chunk_info_table().parameter, self.chunk_info_table.clone()),
            (image_chunks_table().parameter, self.image_chunks_table.clone()),
            (scan_table().parameter, self.scan_table.clone()),
        ]
    }

    /// Picks each name from the environment first, then from the stage's SSM parameters
    /// (relative names → values). A name found in neither is an error naming both places.
    pub fn resolve(
        stage: &str,
        parameters: &HashMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Resources> {
        let pick = |parameter: &str, env_var: &str| -> anyhow::Result<String> {
            env(env_var)
                .filter(|v| !v.is_empty())
                .or_else(|| parameters.get(parameter).cloned())
                .with_context(|| {
                    format!(
                        "no {parameter}: set the SSM parameter {}{parameter} or the environment variable {env_var}",
                        parameter_path(stage)
                    )
                })
        };
        let chunk_info = chunk_info_table();
        let image_chunks = image_chunks_table();
        let scans = scan_table();
        Ok(Resources {
            bucket: pick(BUCKET_PARAMETER, BUCKET_ENV_VAR)?,
            chunk_info_table: pick(chunk_info.parameter, chunk_info.env_var)?,
            image_chunks_table: pick(image_chunks.parameter, image_chunks.env_var)?,
            scan_table: pick(scans.parameter, scans.env_var)?,
            cdn_url: env(CDN_URL_ENV_VAR).filter(|v| !v.trim().is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_ssm_and_missing_names_are_explained() {
        let ssm = HashMap::from([
            ("bucket".to_owned(), "from-ssm".to_owned()),
            ("chunkInfoTable".to_owned(), "info-from-ssm".to_owned()),
            ("imageChunksTable".to_owned(), "rows-from-ssm".to_owned()),
            ("scanTable".to_owned(), "scans-from-ssm".to_owned()),
        ]);
        let env = |name: &str| (name == "PAWQL_BUCKET").then(|| "from-env".to_owned());
        let resolved = Resources::resolve("dev", &ssm, env).unwrap();
        assert_eq!(resolved.bucket, "from-env");
        assert_eq!(resolved.chunk_info_table, "info-from-ssm");

        let err = Resources::resolve("prod", &HashMap::new(), |_| None).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("/pawql/prod/bucket") && text.contains("PAWQL_BUCKET"),
            "{text}"
        );
    }
}
