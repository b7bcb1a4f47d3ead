//! The `pawql` binary, one for every door:
//! - `pawql serve`: the local server (embedded backend by default, `--backend aws` for S3 +
//!   DynamoDB, e.g. on moto);
//! - `pawql provision`: creates a stage's bucket, tables and SSM parameters on the configured
//!   AWS endpoint (for emulators and sandboxes; production is deployed by serverless.yml);
//! - `pawql migrate`: converts a stage written before write shards (see docs/migrating.md);
//! - `pawql variants`: gives images stored before sized variants their variants;
//! - `pawql upload | random | scan | results`: the client commands (src/cli), against any
//!   pawql server;
//! - `pawql lambda`: the Lambda runtime loop. On Lambda the binary is `bootstrap` and gets no
//!   arguments; `AWS_LAMBDA_RUNTIME_API` in the environment then selects this mode, and
//!   `PAWQL_HANDLER` (`api`, `stream`, `scan-stream` or `appsync`) which function this is.

use clap::{Parser, Subcommand};
use pawql::adapters::aws::{self, AwsClients};
use pawql::app::{BackendSpec, Scanning, Wiring};
use pawql::config::{Backend, CatalogArgs, Handler, LambdaArgs, ServeArgs, StageArgs};

/// `pawql variants`: where the catalogue is (as `pawql serve` takes it).
#[derive(clap::Args)]
struct VariantsArgs {
    #[arg(long, env = "PAWQL_BACKEND", value_enum, default_value_t = Backend::Embedded)]
    backend: Backend,
    #[command(flatten)]
    stage: StageArgs,
    #[arg(long, env = "PAWQL_DATA_DIR", default_value = "data")]
    data_dir: std::path::PathBuf,
    #[command(flatten)]
    catalog: CatalogArgs,
}

/// `pawql migrate`: the stage, and the labels and write shards it is served with.
#[derive(clap::Args)]
struct MigrateArgs {
    #[command(flatten)]
    stage: StageArgs,
    #[command(flatten)]
    catalog: CatalogArgs,
}

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
    /// Serve GraphQL (and GraphiQL) locally.
    Serve(ServeArgs),
    /// Create a stage's bucket, tables and SSM parameters on the configured AWS endpoint.
    Provision(StageArgs),
    /// Convert a stage's labels to write shards and slots (after deploying this version).
    Migrate(MigrateArgs),
    /// Give images stored before sized variants their variants and placeholder (idempotent).
    Variants(VariantsArgs),
    /// Run as an AWS Lambda function: the API (HTTP API / Function URL events) or the scan
    /// handler (DynamoDB stream events).
    Lambda(LambdaArgs),
    /// Upload image files to a pawql server.
    #[cfg(feature = "cli")]
    Upload(pawql::cli::UploadArgs),
    /// Weighted-random images of a label: list them, or save them with -o.
    #[cfg(feature = "cli")]
    Random(pawql::cli::RandomArgs),
    /// Scan every image in a folder for cats; writes a batch file for `pawql results`.
    #[cfg(feature = "cli")]
    Scan(pawql::cli::ScanArgs),
    /// The verdicts for a batch file written by `pawql scan`.
    #[cfg(feature = "cli")]
    Results(pawql::cli::ResultsArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    if on_lambda {
        let stage =
            std::env::var("PAWQL_STAGE").unwrap_or_else(|_| pawql::adapters::aws::resources::DEFAULT_STAGE.to_owned());
        pawql::observability::init_lambda(&stage);
    } else {
        pawql::observability::init_local();
    }
    let cli = if on_lambda && std::env::args_os().len() == 1 {
        Cli::parse_from(["pawql", "lambda"])
    } else {
        Cli::parse()
    };
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Provision(args) => provision(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Variants(args) => variants(args).await,
        Command::Lambda(args) => lambda(args).await,
        #[cfg(feature = "cli")]
        Command::Upload(args) => pawql::cli::upload(args).await,
        #[cfg(feature = "cli")]
        Command::Random(args) => pawql::cli::random(args).await,
        #[cfg(feature = "cli")]
        Command::Scan(args) => pawql::cli::scan(args).await,
        #[cfg(feature = "cli")]
        Command::Results(args) => pawql::cli::results(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.catalog.settings()?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let bound = listener.local_addr()?;
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
    let backend = backend_spec(args.backend, &args.stage, &args.data_dir, &public_url).await;
    let router = Wiring::new(backend, settings)
        .options(args.access.options())
        .serve(Scanning::InProcess {
            cat_threshold: args.cat_threshold,
        })
        .await?
        .door;
    let router = pawql::server::with_rate_limit(
        router,
        pawql::server::RateLimit {
            rate: args.rate_limit,
            burst: args.rate_burst,
            limit_loopback: args.rate_limit_loopback,
        },
    );
    tracing::info!(%bound, backend = ?args.backend, "pawql serving: GraphiQL at {public_url}/graphql");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}

async fn provision(args: StageArgs) -> anyhow::Result<()> {
    let clients = AwsClients::from_env().await;
    let created = aws::provision(&clients, &args.stage).await?;
    println!(
        "provisioned stage {}: bucket {}, tables {} and {}, SSM parameters under {}",
        args.stage,
        created.bucket,
        created.chunk_info_table,
        created.image_chunks_table,
        aws::resources::parameter_path(&args.stage)
    );
    Ok(())
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let settings = args.catalog.settings()?;
    let clients = AwsClients::from_env().await;
    let backend = aws::open(&clients, &args.stage.stage, &settings).await?;
    let report =
        aws::migrate::migrate(&clients.dynamodb, &backend.resources, &settings.labels, settings.shards).await?;
    for label in report {
        match label.images {
            Some(images) => println!(
                "{}: {images} images filed in {} write shards ({} ms)",
                label.label,
                settings.shards.count(),
                label.millis
            ),
            None => println!("{}: already in write shards (or empty), nothing to do", label.label),
        }
    }
    Ok(())
}

async fn variants(args: VariantsArgs) -> anyhow::Result<()> {
    let settings = args.catalog.settings()?;
    // Variants are written, never served, so no image URL is handed out here.
    let backend = backend_spec(args.backend, &args.stage, &args.data_dir, "http://127.0.0.1").await;
    let catalog = Wiring::new(backend, settings.clone()).catalog().await?.door;
    let mut failed = 0;
    for label in settings.labels.iter() {
        let report = catalog.backfill_renditions(label).await?;
        println!(
            "{label}: variants made for {}, {} already had them, {} failed",
            report.made,
            report.already_done,
            report.failed.len()
        );
        failed += report.failed.len();
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} images got no variants (see the log); run again to retry them"
    );
    Ok(())
}

async fn lambda(args: LambdaArgs) -> anyhow::Result<()> {
    let settings = args.catalog.settings()?;
    let clients = AwsClients::from_env().await;
    let min_confidence = args.cat_min_confidence;
    let wiring = Wiring::new(BackendSpec::aws(&clients, &args.stage.stage), settings).options(args.access.options());
    match args.handler {
        Handler::Api => {
            let wired = pawql::lambda::within_init(wiring.lambda_api(min_confidence)).await?;
            pawql::lambda::run(wired.door).await
        }
        Handler::Stream => {
            let wired = pawql::lambda::within_init(wiring.lambda_stream(min_confidence)).await?;
            pawql::lambda::run_streaming(wired.door).await
        }
        Handler::ScanStream => {
            let wired = pawql::lambda::within_init(wiring.scan_handler(min_confidence)).await?;
            pawql::scan_stream::run(wired.door).await
        }
        Handler::AppSync => {
            let scanning = Scanning::StreamHandler { min_confidence };
            let wired = pawql::lambda::within_init(wiring.appsync(scanning, args.appsync.access())).await?;
            pawql::lambda::run_appsync(wired.door).await
        }
    }
}

/// Where `serve` and `variants` find the catalogue: the data directory, or the stage with
/// clients from the environment.
async fn backend_spec(
    backend: Backend,
    stage: &StageArgs,
    data_dir: &std::path::Path,
    public_url: &str,
) -> BackendSpec {
    match backend {
        Backend::Embedded => BackendSpec::Embedded {
            data_dir: data_dir.to_owned(),
            public_url: public_url.to_owned(),
        },
        Backend::Aws => BackendSpec::Aws {
            clients: AwsClients::from_env().await,
            stage: stage.stage.clone(),
        },
    }
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
