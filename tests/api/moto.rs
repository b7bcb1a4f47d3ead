//! moto's server, the AWS emulator: installed into `.venv/` on first use, started on a free
//! loopback port for each test that needs it, and stopped when the guard drops.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{Credentials, Region};

pub struct MotoServer {
    child: Child,
    pub endpoint: String,
}

/// `.venv/bin/moto_server`, installing it once per test process if missing.
fn moto_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join("scripts/install-moto"))
            .status()
            .expect("running scripts/install-moto");
        assert!(status.success(), "scripts/install-moto failed");
        root.join(".venv/bin/moto_server")
    })
}

impl MotoServer {
    pub async fn start() -> MotoServer {
        let binary = tokio::task::spawn_blocking(|| moto_binary().to_owned()).await.unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let server = MotoServer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// SDK configuration pointing every client at this server, with dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }

    /// An S3 client for this server (path-style addressing: no bucket DNS names on loopback).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
