//! `pice local` as a user runs it: the real `pice` binary starting real `pice-sim`,
//! `pice-edge-agent` and `pice-gateway` processes on 127.0.0.1, a chat completion through the
//! gateway, and SIGTERM or SIGKILL leaving no child process behind; plus its errors for a bad pool file
//! and a port in use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::io::{AsyncBufReadExt, BufReader};

const POOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/examples/local-sim.yaml");

/// `pice`, after checking that the binaries of the other package lie beside it.
fn pice() -> PathBuf {
    let pice = PathBuf::from(env!("CARGO_BIN_EXE_pice"));
    for sibling in ["pice-sim", "pice-edge-agent"] {
        let path = pice.with_file_name(sibling);
        assert!(
            path.is_file(),
            "{} is missing: run `cargo build -p pice-edge-agent --bins` (make unit builds it)",
            path.display()
        );
    }
    pice
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The ids of the processes whose parent is `parent`, from `/proc/<pid>/stat`.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the parenthesised command: state, ppid, ...
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

fn run_pice(file: &Path, port: u16) -> Output {
    Command::new(pice()).args(["local", "-f"]).arg(file).args(["--port", &port.to_string()]).output().unwrap()
}

/// A running `pice local` on the example pool, its stdout after the ready line, and what it
/// printed until then.
struct Local {
    child: tokio::process::Child,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    printed: String,
    _logs: tempfile::TempDir,
}

async fn start_local(port: u16) -> Local {
    let logs = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(pice())
        .args(["local", "-f", POOL, "--port", &port.to_string(), "--log-dir"])
        .arg(logs.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let ready = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            printed.push_str(&line);
            printed.push('\n');
            if line.contains("Press Ctrl-C to stop.") {
                return true;
            }
        }
        false
    });
    assert!(ready.await.unwrap_or(false), "pice local did not become ready; it printed:\n{printed}");
    Local { child, stdout, printed, _logs: logs }
}

fn alive(pids: &[u32]) -> Vec<u32> {
    pids.iter().copied().filter(|pid| Path::new(&format!("/proc/{pid}")).exists()).collect()
}

#[tokio::test]
async fn pice_local_answers_through_its_gateway_and_leaves_no_process_after_sigterm() {
    let port = free_port();
    let Local { mut child, mut stdout, printed: seen, _logs } = start_local(port).await;
    assert!(seen.contains(&format!("curl -s http://127.0.0.1:{port}/v1/chat/completions")), "{seen}");
    assert!(seen.contains("SIMULATED"), "{seen}");

    let pid = child.id().unwrap();
    let children = children_of(pid);
    assert_eq!(children.len(), 6, "a cloud sim, two edge sims and agents, a gateway: {children:?}");

    pice_wire::crypto::install_default_provider();
    let body = serde_json::json!({
        "model": "assistant",
        "messages": [{"role": "user", "content": "List three ways to save energy at home."}],
        "max_tokens": 80,
    });
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .header("x-pice-mode", "progressive")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-pice-mode"], "progressive");
    let answer: serde_json::Value = response.json().await.unwrap();
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(!text.is_empty(), "{answer}");

    kill_process(Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(), Signal::TERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = stdout.next_line().await {
        rest.push_str(&line);
    }
    assert!(status.success(), "{status}; it printed: {rest}");
    assert!(rest.contains("Stopped 6 processes."), "{rest}");
    let left = alive(&children);
    assert!(left.is_empty(), "child processes left behind: {left:?}");
}

/// `pice bench quality` as a user runs it against a running gateway, the gateway's cloud
/// model as the judge (the simulator's text is rarely a readable verdict, which the report
/// must then say rather than fail).
#[tokio::test]
async fn pice_bench_quality_asks_a_running_gateway_both_ways_and_writes_its_report() {
    let port = free_port();
    let mut local = start_local(port).await;
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("quality.md");
    let questions = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/questions/vicuna80.csv");
    let output = tokio::process::Command::new(pice())
        .args(["bench", "quality", "--gateway", &format!("http://127.0.0.1:{port}"), "--model", "assistant"])
        .args(["--questions", questions, "--limit", "2", "--max-tokens", "60", "--out"])
        .arg(&report)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("| all | 2 | "), "{text}");
    assert!(text.contains("vicuna80.csv"), "{text}");
    assert!(text.contains("went cloud-only: "), "the reasons for cloud-only answers: {text}");
    assert_eq!(stderr.matches("vicuna80.csv #").count(), 2, "one line per question judged: {stderr}");
    local.child.kill().await.unwrap();
}

#[tokio::test]
async fn the_children_of_pice_local_stop_when_it_is_killed_with_sigkill() {
    let mut local = start_local(free_port()).await;
    let pid = local.child.id().unwrap();
    let children = children_of(pid);
    assert_eq!(children.len(), 6, "{children:?}");
    kill_process(Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(), Signal::KILL).unwrap();
    local.child.wait().await.unwrap();
    let mut left = alive(&children);
    for _ in 0..150 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = alive(&children);
    }
    assert!(left.is_empty(), "children still running 15 s after pice was killed: {left:?}");
}

#[test]
fn an_invalid_pool_file_fails_with_a_message_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let pool = std::fs::read_to_string(POOL).unwrap();
    let wrong_type = dir.path().join("wrong-type.yaml");
    std::fs::write(&wrong_type, pool.replace("    model: llama", "    modle: llama")).unwrap();
    let output = run_pice(&wrong_type, free_port());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("is not a valid InferencePool") && stderr.contains("missing field `model`"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{}:", wrong_type.display())), "{stderr}");

    let invalid = dir.path().join("invalid.yaml");
    std::fs::write(
        &invalid,
        pool.replace("mode: auto", "mode: progressive").replace("  edge:\n", "  edgy:\n"),
    )
    .unwrap();
    let output = run_pice(&invalid, free_port());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("routing.mode is progressive but edge.pools is empty"), "{stderr}");
}

#[test]
fn a_port_in_use_fails_with_a_message_naming_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let output = run_pice(Path::new(POOL), port);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("port {port} is in use")) && stderr.contains("--port"), "{stderr}");
}
