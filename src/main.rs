//! The `pawql` binary: `pawql serve` runs the local server on the embedded backend.

use clap::{Parser, Subcommand};
use pawql::config::ServeArgs;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "pawql",
    version,
    about = "Weighted-random pet images and cat detection over GraphQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GraphQL (and GraphiQL) locally on the embedded backend.
    Serve(ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=info")))
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.catalog.settings()?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let bound = listener.local_addr()?;
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
    let router = pawql::app::embedded_router(&args.data_dir, &public_url, settings)?;
    tracing::info!(%bound, data_dir = %args.data_dir.display(), "pawql serving: GraphiQL at {public_url}/graphql");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
