//! moto's server, the AWS emulator: installed into `.venv/` on first use (scripts/install-moto),
//! started once per test process on a free loopback port, and stopped when the process ends.
//!
//! Tests share one server and stay apart by names (each test app provisions its own stage).
//! It is moto's app served one request at a time (scripts/moto-server.py says why).
//! The server runs under a small shell watchdog that stops it as soon as the test process is
//! gone, so no emulator outlives a test run, even one that panicked or was killed.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{Credentials, Region};

/// The (access key id, secret key) every client signs with; moto takes any.
pub const CREDENTIALS: (&str, &str) = ("testing", "testing");

pub struct MotoServer {
    pub endpoint: String,
    /// The watchdog shell; it exits (stopping moto) when the test process does.
    _watchdog: std::process::Child,
}

/// The watchdog: start moto, then poll the parent (the test process) and stop moto once it
/// has exited. `$PPID` is fixed at shell start, so it keeps naming the test process.
const WATCHDOG: &str = r#"
"$1" "$2" 127.0.0.1 "$3" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null' EXIT
while kill -0 "$PPID" 2>/dev/null && kill -0 "$moto" 2>/dev/null; do sleep 0.5; done
"#;

impl MotoServer {
    /// The shared server, started on first use.
    pub async fn shared() -> &'static MotoServer {
        static SERVER: OnceLock<MotoServer> = OnceLock::new();
        if let Some(server) = SERVER.get() {
            return server;
        }
        tokio::task::spawn_blocking(|| SERVER.get_or_init(MotoServer::start))
            .await
            .unwrap()
    }

    fn start() -> MotoServer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join("scripts/install-moto"))
            .status()
            .expect("running scripts/install-moto");
        assert!(status.success(), "scripts/install-moto failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "moto-watchdog"])
            .arg(root.join(".venv/bin/python"))
            .arg(root.join("scripts/moto-server.py"))
            .arg(port.to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watchdog: watchdog,
        }
    }

    /// SDK configuration pointing every client at this server, with dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        let (key_id, secret) = CREDENTIALS;
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(key_id, secret, None, None, "moto"))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }

    /// The product's clients, configured as `pawql` configures them.
    pub async fn clients(&self) -> pawql::adapters::aws::AwsClients {
        pawql::adapters::aws::AwsClients::new(&self.sdk_config().await)
    }
}

/// A stage name no other test in this or a concurrent test process uses.
pub fn unique_stage() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("t{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
