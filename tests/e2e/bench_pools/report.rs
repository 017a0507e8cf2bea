//! B3's results: one JSON row per (label, pools) in `docs/benchmarks/B3-pools.json`, and the
//! Markdown report and plot regenerated from all rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use pice_tests::apiserver::Counts;
use serde::{Deserialize, Serialize};

/// The results of one size with one operator build.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Row {
    /// Which operator build ("before", "after", ...).
    pub label: String,
    /// Pools created.
    pub pools: usize,
    /// Pools Ready at the end of the wait.
    pub ready: usize,
    /// Seconds from the first create until all were Ready; `None` if they were not.
    pub ready_s: Option<f64>,
    /// Seconds waited (the creation window).
    pub waited_s: f64,
    /// Seconds the creates took.
    pub create_s: f64,
    /// Seconds of the window at rest after it.
    pub rest_s: f64,
    /// The resident memory at which the operator was killed, if it was (MiB).
    pub killed_rss_mib: Option<f64>,
    /// The operator's requests during creation, by "verb resource" (watches as verb `watch`).
    pub operator_creation: BTreeMap<String, u64>,
    /// The operator's requests at rest, by "verb resource".
    pub operator_rest: BTreeMap<String, u64>,
    /// The whole API server's requests during creation, by verb.
    pub apiserver_creation: BTreeMap<String, u64>,
    /// The whole API server's requests at rest, by verb.
    pub apiserver_rest: BTreeMap<String, u64>,
    /// The operator's peak resident memory (MiB).
    pub peak_rss_mib: f64,
    /// The operator's CPU seconds during creation.
    pub cpu_creation_s: f64,
    /// The operator's CPU seconds at rest.
    pub cpu_rest_s: f64,
    /// Reconcile duration quantiles from the operator's histogram (seconds).
    pub reconcile_p50_s: Option<f64>,
    /// See `reconcile_p50_s`.
    pub reconcile_p99_s: Option<f64>,
    /// The machine's 1-minute load average when the size started.
    pub load_average: f64,
    /// The command that ran it.
    pub command: String,
    /// `git rev-parse --short HEAD` of the tree it ran from.
    pub revision: String,
    /// When (UTC).
    pub date: String,
    /// CPU cores of the machine.
    pub cores: usize,
    /// Memory of the machine (GiB).
    pub memory_gib: f64,
}

impl Row {
    /// A row with the run's context (command, revision, date, machine) and nothing measured.
    pub fn about(command: String) -> Self {
        let run = |program: &str, args: &[&str]| {
            let output = std::process::Command::new(program).args(args).output();
            output.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
        };
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_default();
        Self {
            command,
            revision: run("git", &["rev-parse", "--short", "HEAD"]),
            date: run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            memory_gib: (kib / (1 << 20) as f64 * 10.0).round() / 10.0,
            ..Self::default()
        }
    }

    /// The operator's non-watch requests during creation.
    pub fn creation_requests(&self) -> u64 {
        non_watch(&self.operator_creation, |_| true)
    }

    /// The operator's non-watch requests at rest per pool and minute, Leases left out; `None`
    /// without a window at rest (the operator was killed).
    pub fn rest_per_pool_minute(&self) -> Option<f64> {
        let requests = non_watch(&self.operator_rest, |resource| resource != "leases") as f64;
        Some(requests / self.pools.max(1) as f64 / self.rest_minutes()?)
    }

    /// The operator's Lease requests at rest per minute.
    fn rest_leases_per_minute(&self) -> Option<f64> {
        Some(non_watch(&self.operator_rest, |resource| resource == "leases") as f64 / self.rest_minutes()?)
    }

    fn rest_minutes(&self) -> Option<f64> {
        (self.rest_s >= 1.0).then_some(self.rest_s / 60.0)
    }
}

fn non_watch(counts: &BTreeMap<String, u64>, resource: impl Fn(&str) -> bool) -> u64 {
    let counted =
        |key: &String| key.split_once(' ').is_some_and(|(verb, res)| verb != "watch" && resource(res));
    counts.iter().filter(|(key, _)| counted(key)).map(|(_, n)| n).sum()
}

/// Counts keyed "verb resource" (JSON object keys).
pub fn keyed(counts: &Counts) -> BTreeMap<String, u64> {
    counts.iter().map(|((verb, resource), n)| (format!("{verb} {resource}"), *n)).collect()
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn dir() -> PathBuf {
    pice_tests::repo_root().join("docs/benchmarks")
}

/// Adds `row` to B3-pools.json (replacing one of the same label and size) and regenerates the
/// report and the plot from all rows.
pub fn record(row: Row) {
    let mut rows = load();
    match rows.iter_mut().find(|r| r.label == row.label && r.pools == row.pools) {
        Some(old) => *old = row,
        None => rows.push(row),
    }
    save(&rows);
}

/// Regenerates the report and the plot from B3-pools.json.
pub fn regenerate() {
    save(&load());
}

fn load() -> Vec<Row> {
    let path = dir().join("B3-pools.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display())),
        Err(_) => Vec::new(),
    }
}

fn save(rows: &[Row]) {
    let write = |name: &str, text: String| {
        let path = dir().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    };
    std::fs::create_dir_all(dir()).unwrap_or_else(|e| panic!("{e}"));
    write(
        "B3-pools.json",
        serde_json::to_string_pretty(rows).unwrap_or_else(|e| panic!("rows as JSON: {e}")) + "\n",
    );
    let groups = by_label(rows);
    write("B3-pools.md", render(&groups));
    crate::plot::draw(&groups, &dir().join("B3-pools.png")).unwrap_or_else(|e| panic!("{e}"));
}

/// Rows grouped by label (labels in order of first appearance), each group by pools.
pub fn by_label(rows: &[Row]) -> Vec<(String, Vec<Row>)> {
    let mut groups: Vec<(String, Vec<Row>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|(label, _)| *label == row.label) {
            Some((_, group)) => group.push(row.clone()),
            None => groups.push((row.label.clone(), vec![row.clone()])),
        }
    }
    for (_, group) in &mut groups {
        group.sort_by_key(|row| row.pools);
    }
    groups
}

fn render(groups: &[(String, Vec<Row>)]) -> String {
    let mut out = String::from(
        "# B3: the operator at scale (pools)\n\n\
         One `pice-operator` (release build, watching all namespaces, production defaults, \
         `RUST_LOG=warn`) runs as a ServiceAccount bound to cluster-admin on the local control \
         plane (`tests/cluster/`: real etcd, kube-apiserver, controller-manager and scheduler, \
         kwok fake nodes). For each size N, N InferencePools are created in a fresh namespace, \
         32 at a time: an external cloud endpoint (no cloud pods), one edge pool with one small \
         model (100m CPU, 128Mi; 1 to 2 replicas, queue depth from the agents) on 20 kwok edge \
         nodes, and a gateway of 1 replica. Measured: the time from the first create until all \
         N are `Ready=True` (the pool list polled every second); the operator's API requests \
         from the API server's audit log, during creation (first create until all Ready) and \
         during a window at rest right after it (watches apart); the whole API server's \
         `apiserver_request_total` over the same windows (it includes the control plane's own \
         components and the benchmark's polling); the operator's peak RSS (VmHWM) and CPU time \
         from `/proc`; and reconcile p50/p99 interpolated from its \
         `pice_operator_reconcile_duration_seconds` histogram. The operator is killed, and that \
         recorded, if its RSS passes 6 GiB: such a row has no window at rest and no reconcile \
         figures (–).\n\n\
         **Targets:** 1000 pools Ready in ≤ 60 s; at rest ≤ 1 non-watch API request per pool \
         per minute (Lease renewals aside: shown apart); peak RSS ≤ 256 MiB at 1000 pools.\n\n\
         The machine was shared with compilations while these ran: CPU contention (see the \
         load average column) makes times and CPU seconds upper bounds.\n\n\
         ![time to Ready and requests at rest against pools](B3-pools.png)\n",
    );
    for (label, rows) in groups {
        let _ = write!(
            out,
            "\n## {label}\n\n\
             | pools | time to Ready | operator requests in creation (non-watch) | top in creation | \
             at rest / pool / min (no Leases) | Lease requests / min | API server requests creation / rest | \
             peak RSS MiB | CPU s creation / rest | reconcile p50 / p99 | load avg |\n\
             |---:|---|---:|---|---:|---:|---|---:|---|---|---:|\n"
        );
        for row in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} / {} | {:.0} | {:.1} / {:.1} | {} / {} | {:.1} |",
                row.pools,
                ready_text(row),
                row.creation_requests(),
                top(&row.operator_creation),
                number(row.rest_per_pool_minute(), 2),
                number(row.rest_leases_per_minute(), 1),
                row.apiserver_creation.values().sum::<u64>(),
                row.apiserver_rest.values().sum::<u64>(),
                row.peak_rss_mib,
                row.cpu_creation_s,
                row.cpu_rest_s,
                seconds(row.reconcile_p50_s),
                seconds(row.reconcile_p99_s),
                row.load_average,
            );
        }
        out.push_str(
            "\nThe operator's requests by verb and resource (creation; at rest over the rest window):\n\n",
        );
        for row in rows {
            let _ = writeln!(
                out,
                "- {} pools, creation: {}; at rest ({:.0} s): {}",
                row.pools,
                list(&row.operator_creation),
                row.rest_s,
                list(&row.operator_rest)
            );
        }
        out.push_str("\nThe whole API server's requests by verb (creation; at rest):\n\n");
        for row in rows {
            let _ = writeln!(
                out,
                "- {} pools: {}; {}",
                row.pools,
                list(&row.apiserver_creation),
                list(&row.apiserver_rest)
            );
        }
        let mut runs: Vec<String> = Vec::new();
        for row in rows {
            let run = format!(
                "revision {} · {} cores, {} GiB · `{}`",
                row.revision, row.cores, row.memory_gib, row.command
            );
            if !runs.contains(&run) {
                runs.push(run);
            }
        }
        let dates: Vec<&str> = rows.iter().map(|row| row.date.as_str()).collect();
        let first_last = dates.iter().min().zip(dates.iter().max());
        let (first, last) = first_last.unwrap_or((&"", &""));
        let _ = writeln!(out, "\nRun {first} – {last}: {}", runs.join("; "));
    }
    out
}

fn ready_text(row: &Row) -> String {
    match (row.ready_s, row.killed_rss_mib) {
        (Some(s), _) => format!("{s:.1} s"),
        (None, Some(rss)) => {
            format!(
                "not Ready: {}/{} after {:.0} s, operator killed at {rss:.0} MiB RSS",
                row.ready, row.pools, row.waited_s
            )
        }
        (None, None) => format!("not Ready: {}/{} after {:.0} s", row.ready, row.pools, row.waited_s),
    }
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or("–".into(), |v| format!("{v:.decimals$}"))
}

fn seconds(value: Option<f64>) -> String {
    value.map_or("–".into(), |s| if s < 1.0 { format!("{:.0} ms", s * 1000.0) } else { format!("{s:.2} s") })
}

/// The three largest non-watch counts.
fn top(counts: &BTreeMap<String, u64>) -> String {
    let mut sorted: Vec<_> = counts.iter().filter(|(key, _)| !key.starts_with("watch ")).collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1));
    sorted.iter().take(3).map(|(key, n)| format!("{key} {n}")).collect::<Vec<_>>().join(", ")
}

/// All counts, largest first.
fn list(counts: &BTreeMap<String, u64>) -> String {
    let mut sorted: Vec<_> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1));
    let items: Vec<String> = sorted.iter().map(|(key, n)| format!("{key} {n}")).collect();
    if items.is_empty() { "none".into() } else { items.join(", ") }
}
