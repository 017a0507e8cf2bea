//! Where a benchmark ran: the command, git revision, machine and date every result file records.

use std::fmt::Write as _;

/// What a result file says about its run. The command and the git revision are read when the
/// run starts (the tree may change while a long benchmark runs); the load average and the date
/// when the file is written.
#[derive(Clone, Debug)]
pub struct Provenance {
    command: String,
    revision: String,
}

impl Provenance {
    /// The command line and the checkout as they are now.
    pub fn at_start() -> Self {
        Self { command: std::env::args().collect::<Vec<_>>().join(" "), revision: git_revision() }
    }

    /// Writes the provenance lines (Markdown list items).
    pub fn write(&self, md: &mut String) -> std::fmt::Result {
        writeln!(md, "- Command: `{}`", self.command)?;
        writeln!(md, "- Git revision: {}", self.revision)?;
        writeln!(md, "- Machine: {} (load average at the end: {})", machine(), loadavg())?;
        writeln!(md, "- Date: {}", jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC"))
    }
}

fn git_revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let revision = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{revision} (with uncommitted changes in the working tree)") } else { revision }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let kib: f64 =
            text.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok()?;
        Some(format!("{:.0} GiB", kib / 1024.0 / 1024.0))
    });
    format!("{cores} cores, {} memory", memory.unwrap_or_else(|| "unknown".into()))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".into(), |t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
