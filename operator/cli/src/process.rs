//! The child processes of `pice local` and `pice bench`: each started with its stderr in a log
//! file, waited for until it says (or shows) where it listens, and stopped with SIGTERM (then
//! SIGKILL after a grace period). `kill_on_drop` covers the paths that never reach
//! [`Child::stop`], and the child stops itself when `pice` dies without either (SIGKILL; see
//! `pice_wire::shutdown`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a child may take to say or show where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a child process did not start.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {name}: {source}")]
    Spawn { name: String, source: std::io::Error },
    #[error("{name} did not start: {reason}\n--- last lines of {} ---\n{tail}", log.display())]
    NotStarted { name: String, reason: String, log: PathBuf, tail: String },
}

/// A running child process.
pub struct Child {
    pub name: String,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Child {
    /// Starts `program` with `args`; its stderr goes to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log_dir: &Path) -> Result<Self, ProcessError> {
        Self::spawn_logging(name, program, args, log_dir, None)
    }

    /// [`Child::spawn`] with `RUST_LOG` set to `log_level` when given (benchmarks keep their
    /// children's logs to warnings, so logging costs no time under load).
    pub fn spawn_logging(
        name: &str,
        program: &Path,
        args: &[String],
        log_dir: &Path,
        log_level: Option<&str>,
    ) -> Result<Self, ProcessError> {
        let log = log_dir.join(format!("{}.log", name.replace('/', "_")));
        let spawn_error = |source| ProcessError::Spawn { name: name.to_owned(), source };
        let file = std::fs::File::create(&log).map_err(spawn_error)?;
        let mut command = Command::new(program);
        if let Some(level) = log_level {
            command.env("RUST_LOG", level);
        }
        let child = command
            .args(args)
            .env(pice_wire::shutdown::STOP_WITH_PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        Ok(Self { name: name.to_owned(), child, log })
    }

    /// The address in the `listening on ADDR` line that `pice-sim` and `pice-gateway` print
    /// first; the rest of stdout is drained so the child never blocks on it.
    pub async fn listening_addr(&mut self) -> Result<String, ProcessError> {
        let Some(stdout) = self.child.stdout.take() else {
            return Err(self.failed("its output was already read").await);
        };
        let mut lines = BufReader::new(stdout).lines();
        let Ok(first) = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await else {
            return Err(self.failed("it did not say where it listens").await);
        };
        let first = first.ok().flatten().unwrap_or_default();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        match first.strip_prefix("listening on ") {
            Some(addr) => Ok(addr.trim().to_owned()),
            None => Err(self.failed("it exited before listening").await),
        }
    }

    /// Waits until `addr` accepts connections (for a child told where to listen).
    pub async fn wait_listening(&mut self, addr: SocketAddr) -> Result<(), ProcessError> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while TcpStream::connect(addr).await.is_err() {
            if self.child.try_wait().ok().flatten().is_some() {
                return Err(self.failed("it exited").await);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.failed(&format!("it never listened on {addr}")).await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The `field` of the first JSON log line whose message is `message`, waiting up to `limit`.
    pub async fn logged_field(
        &mut self,
        message: &str,
        field: &str,
        limit: Duration,
    ) -> Result<String, ProcessError> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if let Some(value) = find_logged_field(&self.log_text(), message, field) {
                return Ok(value);
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return Err(self.failed("it exited").await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(self.failed(&format!("it did not log {message:?} within {} s", limit.as_secs())).await)
    }

    /// The operating system's id of the process.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL if it has not exited within the grace period; always reaps it.
    pub async fn stop(mut self) {
        let pid = self.child.id().and_then(|id| Pid::from_raw(i32::try_from(id).ok()?));
        if let Some(pid) = pid {
            let _ = kill_process(pid, Signal::TERM);
        }
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// An error saying why the child did not start, with the end of its log; kills it.
    pub async fn failed(&mut self, reason: &str) -> ProcessError {
        let _ = self.child.kill().await;
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        ProcessError::NotStarted {
            name: self.name.clone(),
            reason: reason.to_owned(),
            log: self.log.clone(),
            tail,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A free port on 127.0.0.1 (for a child that does not announce its address).
pub fn free_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The `field` of the first JSON log line (as `tracing`'s JSON format writes) with `message`.
fn find_logged_field(log: &str, message: &str, field: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let fields = serde_json::from_str::<serde_json::Value>(line).ok()?.get("fields")?.clone();
        (fields.get("message")?.as_str()? == message)
            .then(|| fields.get(field)?.as_str().map(str::to_owned))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_found_in_the_json_log_line_with_the_message() {
        let log = "not json\n{\"fields\":{\"message\":\"other\",\"grpc\":\"1\"}}\n\
                   {\"fields\":{\"message\":\"edge agent serving\",\"grpc\":\"127.0.0.1:5\"}}\n";
        assert_eq!(find_logged_field(log, "edge agent serving", "grpc").as_deref(), Some("127.0.0.1:5"));
        assert_eq!(find_logged_field(log, "edge agent serving", "metrics"), None);
    }
}
