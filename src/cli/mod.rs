//! The client commands of the `pawql` binary, for people and scripts at a terminal:
//! `upload`, `random`, `scan` (bulk, with a batch file) and `results` (of a batch file).
//! They talk to any pawql server — local or the Lambda — through the typed client
//! ([`crate::client`]), so they keep ice-cat-wrangler's bulk workflow and petAPI's uploads.

mod batch;
mod files;
mod random;
mod results;
mod scan;
mod upload;

use clap::Args;

use crate::client::PawqlClient;

pub use random::{random, RandomArgs};
pub use results::{results, ResultsArgs};
pub use scan::{scan, ScanArgs};
pub use upload::{upload, UploadArgs, DIRECT_UPLOAD_BYTES};

/// Which server to talk to, and as whom.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The server's GraphQL endpoint.
    #[arg(long, env = "PAWQL_ENDPOINT", default_value = "http://127.0.0.1:8080/graphql")]
    pub endpoint: String,
    /// API key (header x-api-key); needed for uploads and scans when the server has keys.
    #[arg(long, env = "PAWQL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Where subscriptions stream from, when not `<endpoint>/stream`: on AWS the stream
    /// function's URL (`serverless deploy` prints it), e.g. https://….lambda-url….on.aws
    #[arg(long, env = "PAWQL_STREAM_URL")]
    pub stream_url: Option<String>,
}

impl Remote {
    pub fn client(&self) -> anyhow::Result<PawqlClient> {
        let client = PawqlClient::new(self.endpoint.clone(), self.api_key.clone())?;
        Ok(match &self.stream_url {
            Some(url) => client.with_stream_url(url),
            None => client,
        })
    }
}

/// What a command that handles many files ends with: every file was reported on its own,
/// and the exit status says whether any failed (1), so scripts notice.
pub fn exit_status(failed: usize, total: usize) -> anyhow::Result<()> {
    if failed > 0 {
        anyhow::bail!("{failed} of {total} files failed (see above)");
    }
    Ok(())
}
