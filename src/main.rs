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
//!   `PAWQL_HANDLER` (`api`, `stream` or `scan-stream`) which of the three functions this is.

use clap::{Parser, Subcommand};
use pawql::adapters::aws::{self, AwsClients};
use pawql::app::AwsScanning;
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
    let router = match args.backend {
        Backend::Embedded => pawql::app::embedded_router(
            &args.data_dir,
            &public_url,
            settings,
            args.cat_threshold,
            args.access.options(),
        )?,
        Backend::Aws => {
            let clients = AwsClients::from_env().await;
            pawql::app::aws_router(
                &clients,
                &args.stage.stage,
                settings,
                AwsScanning::InProcess {
                    cat_threshold: args.cat_threshold,
                },
                args.access.options(),
            )
            .await?
        }
    };
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
    let catalog = match args.backend {
        Backend::Embedded => {
            let (images, tables) = pawql::adapters::embedded::open(&args.data_dir, "http://127.0.0.1", &settings)?;
            resolvers::Catalog::new(images, tables, settings.clone())
        }
        Backend::Aws => {
            let clients = AwsClients::from_env().await;
            let backend = aws::open(&clients, &args.stage.stage, &settings).await?;
            resolvers::Catalog::new(backend.images, backend.tables, settings.clone())
        }
    };
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
    match args.handler {
        Handler::Api => {
            let router = pawql::lambda::within_init(pawql::app::lambda_api_router(
                &clients,
                &args.stage.stage,
                settings,
                min_confidence,
                args.access.options(),
            ))
            .await?;
            pawql::lambda::run(router).await
        }
        Handler::Stream => {
            let router = pawql::lambda::within_init(pawql::app::lambda_stream_router(
                &clients,
                &args.stage.stage,
                settings,
                min_confidence,
                args.access.options(),
            ))
            .await?;
            pawql::lambda::run_streaming(router).await
        }
        Handler::ScanStream => {
            let scanner = pawql::lambda::within_init(pawql::app::aws_stream_scanner(
                &clients,
                &args.stage.stage,
                &settings,
                min_confidence,
            ))
            .await?;
            pawql::scan_stream::run(scanner).await
        }
    }
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
