//! The operator's resource use from `/proc`: peak resident memory and CPU time, sampled every
//! second, with a cap on its memory beyond which it is killed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one sample saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Peak resident memory (VmHWM).
    pub peak_rss_bytes: u64,
    /// User plus system CPU time.
    pub cpu_seconds: f64,
    /// The resident memory at which the process was killed, if it was.
    pub killed_rss_bytes: Option<u64>,
}

/// Samples a process every second until dropped.
pub struct Monitor {
    usage: Arc<Mutex<Usage>>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    /// Starts sampling process `pid`; kills it (SIGKILL) when its resident memory passes `cap`.
    pub fn start(pid: u32, cap: u64) -> Self {
        let tick = clock_ticks();
        let usage = Arc::new(Mutex::new(sample(pid, tick).map(|(usage, _)| usage).unwrap_or_default()));
        let shared = usage.clone();
        let task = tokio::spawn(async move {
            while let Some((now, rss)) = sample(pid, tick) {
                let killed = rss > cap;
                if killed {
                    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                }
                if let Ok(mut usage) = shared.lock() {
                    *usage = Usage { killed_rss_bytes: killed.then_some(rss), ..now };
                }
                if killed {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self { usage, task }
    }

    /// The latest sample.
    pub fn now(&self) -> Usage {
        self.usage.lock().map(|usage| *usage).unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Usage and current resident memory of `pid`, or `None` once it is gone.
fn sample(pid: u32, tick: f64) -> Option<(Usage, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find_map(|line| line.strip_prefix(field))?;
        line.trim_start_matches(':').split_whitespace().next()?.parse().ok()
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name: state is the 3rd field of the line, utime the 14th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok();
    let cpu_seconds = (ticks(11)? + ticks(12)?) / tick;
    let usage = Usage { peak_rss_bytes: kib("VmHWM")? * 1024, cpu_seconds, killed_rss_bytes: None };
    Some((usage, kib("VmRSS")? * 1024))
}

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    let output = std::process::Command::new("getconf").arg("CLK_TCK").output();
    output.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(100.0)
}

/// The 1-minute load average of this machine (other work competing for its CPUs).
pub fn load_average() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().and_then(|l| l.parse().ok()).unwrap_or_default()
}
