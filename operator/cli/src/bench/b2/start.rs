//! Starting one system of B2 as its own process (through `pice local`'s [`Child`]) and waiting
//! until it answers a chat completion.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::load::{self, Target};
use super::system::Launch;
use crate::process::Child;

/// How long a system may take to answer its first request (LiteLLM imports a lot).
const READY_LIMIT: Duration = Duration::from_secs(120);

/// A started system: its process and base URL.
pub struct Started {
    pub child: Child,
    pub url: String,
}

/// The arguments that run `launch` through `sh`, which sets its environment and (for a program
/// that does not announce its address) sends its stdout to the log with its stderr, then
/// `exec`s it so the child's id is the program's own.
fn wrapped(launch: &Launch) -> Vec<String> {
    let redirect = if launch.announces { "" } else { " >&2" };
    let mut args = vec!["-c".to_owned(), format!("exec env \"$@\"{redirect}"), "b2".to_owned()];
    args.extend(launch.env.iter().map(|(key, value)| format!("{key}={value}")));
    args.push(launch.program.display().to_string());
    args.extend(launch.args.iter().cloned());
    args
}

/// Writes `launch`'s files into `dir`, starts it (log in `dir/<name>.log`) and waits until it
/// answers on 127.0.0.1:`port`.
pub async fn start(name: &str, launch: &Launch, port: u16, dir: &Path) -> anyhow::Result<Started> {
    if !launch.program.is_file() {
        bail!("{} is not installed: run deploy/bench/install-routers.sh", launch.program.display());
    }
    for (file, content) in &launch.files {
        std::fs::write(dir.join(file), content).with_context(|| format!("writing {file}"))?;
    }
    let mut child = Child::spawn(name, Path::new("/bin/sh"), &wrapped(launch), dir)?;
    let url = if launch.announces {
        format!("http://{}", child.listening_addr().await?)
    } else {
        format!("http://127.0.0.1:{port}")
    };
    match ready(&url, child.id()).await {
        Ok(()) => Ok(Started { child, url }),
        Err(reason) => Err(child.failed(&reason).await.into()),
    }
}

/// Waits until a chat completion to `url` succeeds; gives up when the process is gone.
async fn ready(url: &str, pid: Option<u32>) -> Result<(), String> {
    let client = load::client().map_err(|e| e.to_string())?;
    let target = Target::new(url, false, 1);
    let deadline = Instant::now() + READY_LIMIT;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), load::one(&client, &target)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => last = format!("{error:#}"),
            Err(_) => last = "a request took over 5 s".into(),
        }
        if pid.is_none_or(|pid| !alive(pid)) {
            return Err(format!("it exited (last request: {last})"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("no successful chat completion within {} s (last: {last})", READY_LIMIT.as_secs()))
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_wrapper_sets_the_environment_and_sends_stdout_to_the_log_unless_it_announces() {
        let mut launch = Launch {
            program: "/r/bin/envoy".into(),
            args: vec!["-c".into(), "e.yaml".into()],
            env: vec![("K".into(), "v w".into())],
            files: Vec::new(),
            announces: false,
            settings: String::new(),
        };
        assert_eq!(
            wrapped(&launch),
            ["-c", "exec env \"$@\" >&2", "b2", "K=v w", "/r/bin/envoy", "-c", "e.yaml"]
        );
        launch.announces = true;
        assert_eq!(wrapped(&launch)[1], "exec env \"$@\"");
    }
}
