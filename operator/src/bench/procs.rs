//! The processes of a benchmark run, started from the built binaries: each is killed when its
//! handle is dropped, and its output is drained so it never blocks on a full pipe.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// How long a process may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running child process; killed on drop.
pub struct Process {
    _child: Child,
}

fn command(bin_dir: &Path, bin: &str, args: &[String]) -> anyhow::Result<Command> {
    let path = bin_dir.join(bin);
    if !path.is_file() {
        bail!("{} is missing: build it first (cargo build --release --bins)", path.display());
    }
    let mut command = Command::new(path);
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .env(pice_edge_agent::shutdown::STOP_WITH_PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok(command)
}

fn drain(output: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(output).lines();
        while let Ok(Some(_)) = lines.next_line().await {}
    });
}

/// Starts `bin` (`pice-sim` or `pice-gateway`) and reads its `listening on ADDR` line.
pub async fn spawn_announcing(
    bin_dir: &Path,
    bin: &str,
    args: &[String],
) -> anyhow::Result<(Process, SocketAddr)> {
    let mut child = command(bin_dir, bin, args)?.spawn().with_context(|| format!("starting {bin}"))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        bail!("{bin}: no output pipes");
    };
    drain(stderr);
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(START_TIMEOUT, lines.next_line())
        .await
        .with_context(|| format!("{bin} did not announce its address"))??
        .with_context(|| format!("{bin} exited before listening"))?;
    let addr = first
        .strip_prefix("listening on ")
        .and_then(|addr| addr.trim().parse().ok())
        .with_context(|| format!("{bin} printed {first:?} instead of its address"))?;
    drain(lines.into_inner());
    Ok((Process { _child: child }, addr))
}

/// Starts `bin` (`pice-edge-agent`) on a known address and waits until it accepts connections.
pub async fn spawn_at(
    bin_dir: &Path,
    bin: &str,
    args: &[String],
    addr: SocketAddr,
) -> anyhow::Result<Process> {
    let mut child = command(bin_dir, bin, args)?.spawn().with_context(|| format!("starting {bin}"))?;
    if let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) {
        drain(stdout);
        drain(stderr);
    }
    let listening = async {
        while TcpStream::connect(addr).await.is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("{bin} {} exited ({status}) before listening", args.join(" "));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    };
    tokio::time::timeout(START_TIMEOUT, listening)
        .await
        .with_context(|| format!("{bin} never listened on {addr}"))??;
    Ok(Process { _child: child })
}

/// A free port on 127.0.0.1 (for a process that does not announce its address).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}
