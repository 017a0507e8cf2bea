//! One child process of `pice local`: started with its stderr in a log file, waited for until
//! it says where it listens, and stopped with SIGTERM (then SIGKILL after a grace period).
//! `kill_on_drop` covers the paths that never reach [`Child::stop`], and the child stops itself
//! when `pice` dies without either (SIGKILL; see `pice_edge_agent::shutdown`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::LocalError;

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running child process.
pub struct Child {
    pub name: String,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Child {
    /// Starts `program` with `args`; its stderr goes to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log_dir: &Path) -> Result<Self, LocalError> {
        let log = log_dir.join(format!("{}.log", name.replace('/', "_")));
        let spawn_error = |source| LocalError::Spawn { name: name.to_owned(), source };
        let file = std::fs::File::create(&log).map_err(spawn_error)?;
        let child = Command::new(program)
            .args(args)
            .env(pice_edge_agent::shutdown::STOP_WITH_PARENT_ENV, std::process::id().to_string())
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
    pub async fn listening_addr(&mut self) -> Result<String, LocalError> {
        let Some(stdout) = self.child.stdout.take() else {
            return Err(self.failed("its output was already read").await);
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next_line().await.ok().flatten().unwrap_or_default();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        match first.strip_prefix("listening on ") {
            Some(addr) => Ok(addr.trim().to_owned()),
            None => Err(self.failed("it exited before listening").await),
        }
    }

    /// The `field` of the first JSON log line whose message is `message`, waiting up to `limit`.
    pub async fn logged_field(
        &mut self,
        message: &str,
        field: &str,
        limit: Duration,
    ) -> Result<String, LocalError> {
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
    pub async fn failed(&mut self, reason: &str) -> LocalError {
        let _ = self.child.kill().await;
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        LocalError::NotStarted {
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
