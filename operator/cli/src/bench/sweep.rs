//! B1's wiring: start the simulated cloud, the edge agents and a gateway per system and link,
//! sweep the offered load, then write the report and the plots.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pice_sim::{Profile, profiles};

use super::cli::B1Args;
use super::link::{self, LinkSetting, Relay};
use super::load::{self, LoadSpec};
use super::provenance::Provenance;
use super::series::{Series, System};
use super::stats::{self, ServerWork, Summary};
use super::{plot, report};
use crate::process::{Child, free_addr};
use pice_api::gateway_config::{CloudTarget, GatewayConfig};
use pice_api::{RoutingMode, RoutingSpec};
use pice_gateway::router::data as question_files;

/// Model name the gateway and the SoT agents ask the cloud simulator for (it serves any name).
const CLOUD_MODEL: &str = "llama-3.1-70b-instruct";

/// The running simulated hardware.
struct Testbed {
    cloud_url: String,
    edges: Vec<SocketAddr>,
    /// Metrics URLs of the edge agents, in the order of `edges`.
    edge_metrics: Vec<String>,
    sot_agents: Vec<SocketAddr>,
    processes: Vec<Child>,
    /// The processes' logs, removed when the run ends.
    logs: tempfile::TempDir,
}

/// Runs B1 as `args` say and writes its report.
pub async fn run(args: B1Args) -> anyhow::Result<()> {
    let provenance = Provenance::at_start();
    let cloud_profile = profile(&args.cloud_profile)?;
    let edge_profile = profile(&args.edge_profile)?;
    let questions = questions(&args.questions)?;
    let bed = testbed(&args, &edge_profile).await?;
    eprintln!(
        "testbed up: cloud {}, {} edge agents, {} SoT agents",
        bed.cloud_url,
        bed.edges.len(),
        bed.sot_agents.len()
    );
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let mut series = Vec::new();
    let first_link = args.links.first().cloned();
    let wanted = |system| args.systems.contains(&system);
    if wanted(System::CloudOnly) {
        let cloud_only = System::CloudOnly;
        series.push(sweep(&args, &bed, &client, &questions, cloud_only, None, first_link.as_ref()).await?);
    }
    if wanted(System::Sot) {
        series.push(sweep(&args, &bed, &client, &questions, System::Sot, None, None).await?);
    }
    for (index, link) in args.links.iter().enumerate() {
        // `auto` sends most questions to the cloud (the unsuitable ones), so the link moves it
        // little: it runs on the first link only, to keep the benchmark's length in bounds.
        let systems = [System::Progressive, System::Auto].into_iter().filter(|&s| wanted(s));
        for system in systems.filter(|&s| s != System::Auto || index == 0) {
            series
                .push(sweep(&args, &bed, &client, &questions, system, Some(link.clone()), Some(link)).await?);
        }
    }
    std::fs::create_dir_all(&args.out)?;
    let context = report::Context {
        args: &args,
        cloud: &cloud_profile,
        edge: &edge_profile,
        questions: questions.len(),
        provenance: &provenance,
    };
    report::write(&context, &series, &args.out.join("B1.md"))?;
    plot::latency(&series, &args, &args.out.join("B1-latency.png"))?;
    plot::throughput(&series, &args, &args.out.join("B1-throughput.png"))?;
    eprintln!("wrote {}", args.out.join("B1.md").display());
    Ok(())
}

fn profile(name: &str) -> anyhow::Result<Profile> {
    profiles::named(name).with_context(|| format!("unknown profile {name}; known: {:?}", profiles::NAMES))
}

fn questions(files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut all = Vec::new();
    for file in files {
        all.extend(question_files::read(file).map_err(anyhow::Error::msg)?.into_iter().map(|q| q.question));
    }
    if all.is_empty() {
        bail!("no questions in {files:?}");
    }
    Ok(all)
}

async fn testbed(args: &B1Args, edge: &Profile) -> anyhow::Result<Testbed> {
    let logs = tempfile::Builder::new().prefix("pice-bench-b1-").tempdir()?;
    let sim_args = vec!["--listen=127.0.0.1:0".to_owned(), format!("--profile={}", args.cloud_profile)];
    let mut cloud = spawn(args, "pice-sim", "cloud", &sim_args, logs.path())?;
    let cloud_url = format!("http://{}", cloud.listening_addr().await?);
    let mut bed = Testbed {
        cloud_url,
        edges: Vec::new(),
        edge_metrics: Vec::new(),
        sot_agents: Vec::new(),
        processes: vec![cloud],
        logs,
    };
    for index in 0..args.edges {
        let backend = vec![
            "--backend=sim".to_owned(),
            format!("--sim-profile={}", args.edge_profile),
            format!("--seed={index}"),
            format!("--slots={}", edge.max_batch),
            "--queue=16".to_owned(),
        ];
        let (addr, metrics) = bed.agent(args, &format!("edge-{index}"), backend).await?;
        bed.edges.push(addr);
        bed.edge_metrics.push(format!("http://{metrics}"));
    }
    for index in 0..2 {
        // SoT expands on the cloud: agents in the data centre relay points to the cloud server,
        // with enough slots that the cloud's own batch is the limit.
        let backend = vec![
            "--backend=openai".to_owned(),
            format!("--backend-url={}/v1", bed.cloud_url),
            format!("--model={}", CLOUD_MODEL),
            "--slots=256".to_owned(),
            "--queue=2048".to_owned(),
        ];
        let (addr, _) = bed.agent(args, &format!("sot-{index}"), backend).await?;
        bed.sot_agents.push(addr);
    }
    Ok(bed)
}

impl Testbed {
    /// Starts an edge agent process; returns its gRPC address and its metrics address.
    async fn agent(
        &mut self,
        args: &B1Args,
        name: &str,
        mut agent_args: Vec<String>,
    ) -> anyhow::Result<(SocketAddr, SocketAddr)> {
        let (addr, metrics) = (free_addr()?, free_addr()?);
        agent_args.extend([
            format!("--listen={addr}"),
            format!("--metrics-listen={metrics}"),
            "--readiness-interval-ms=500".into(),
        ]);
        let mut agent = spawn(args, "pice-edge-agent", name, &agent_args, self.logs.path())?;
        agent.wait_listening(addr).await?;
        self.processes.push(agent);
        Ok((addr, metrics))
    }
}

/// Starts one of the built binaries, its log kept to warnings so logging costs no time under load.
fn spawn(args: &B1Args, bin: &str, name: &str, bin_args: &[String], logs: &Path) -> anyhow::Result<Child> {
    let program = args.bin_dir.join(bin);
    if !program.is_file() {
        bail!("{} is missing: build it first (cargo build --release --bins)", program.display());
    }
    Ok(Child::spawn_logging(name, &program, bin_args, logs, Some("warn"))?)
}

/// A gateway whose edge endpoints are `targets`, reached over `link` when given.
async fn gateway(
    args: &B1Args,
    bed: &Testbed,
    targets: &[SocketAddr],
    link: Option<&LinkSetting>,
) -> anyhow::Result<(Child, Vec<Relay>, String)> {
    let mut relays = Vec::new();
    let mut endpoints = Vec::new();
    for target in targets {
        match link {
            Some(link) => {
                let relay = link::relay(*target, link.clone()).await?;
                endpoints.push(relay.addr.to_string());
                relays.push(relay);
            }
            None => endpoints.push(target.to_string()),
        }
    }
    let config = GatewayConfig {
        pool: load::POOL.into(),
        port: 0,
        cloud: CloudTarget { url: bed.cloud_url.clone(), model: CLOUD_MODEL.into() },
        edge: Vec::new(),
        routing: RoutingSpec { mode: RoutingMode::Auto, ..RoutingSpec::default() },
    };
    let path = bed.logs.path().join("gateway.json");
    std::fs::write(&path, serde_json::to_vec(&config)?)?;
    let gateway_args = vec![
        format!("--config={}", path.display()),
        "--listen=127.0.0.1:0".into(),
        format!("--edge-endpoints={}", endpoints.join(",")),
        "--load-interval-ms=200".into(),
    ];
    let mut process = spawn(args, "pice-gateway", "gateway", &gateway_args, bed.logs.path())?;
    let url = format!("http://{}", process.listening_addr().await?);
    wait_ready(&url).await?;
    Ok((process, relays, url))
}

async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        let ready = client.get(format!("{url}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the gateway at {url} never became ready")
}

/// Runs every load level of one system until it is well past saturation.
async fn sweep(
    args: &B1Args,
    bed: &Testbed,
    client: &reqwest::Client,
    questions: &[String],
    system: System,
    link: Option<LinkSetting>,
    gateway_link: Option<&LinkSetting>,
) -> anyhow::Result<Series> {
    let targets = if system == System::Sot { &bed.sot_agents } else { &bed.edges };
    let (_gateway, _relays, url) = gateway(args, bed, targets, gateway_link).await?;
    let mut series = Series { system, link, points: Vec::new() };
    for &rate in &args.rates {
        let mut runs = Vec::new();
        for repeat in 0..args.repeats {
            let spec = LoadSpec {
                url: url.clone(),
                mode: system.mode(),
                rate,
                duration: Duration::from_secs_f64(args.duration_s),
                drain: Duration::from_secs_f64(args.drain_s),
                max_tokens: args.max_tokens,
                seed: args.seed + repeat as u64,
            };
            runs.push(level(bed, client, &spec, questions).await?);
        }
        let summary = stats::median(&runs);
        eprintln!(
            "{} rate {rate}: {}/{} done, {:.2} req/s, p50 {:.2} s, p90 {:.2} s, cloud tok/req {:.0}, {}",
            series.name(),
            summary.completed,
            summary.sent,
            summary.throughput,
            summary.p50,
            summary.p90,
            summary.cloud_tokens,
            report::reason_shares(&summary.reasons)
        );
        let saturated = summary.p90 > 2.0 * args.slo_p90_s;
        series.points.push((rate, summary));
        if saturated {
            break;
        }
    }
    Ok(series)
}

/// One run of one load level, from an idle cloud to an idle cloud.
async fn level(
    bed: &Testbed,
    client: &reqwest::Client,
    spec: &LoadSpec,
    questions: &[String],
) -> anyhow::Result<Summary> {
    wait_cloud_idle(client, &bed.cloud_url).await?;
    let before = server_work(client, bed).await?;
    let outcomes = load::run(client, spec, questions).await;
    wait_cloud_idle(client, &bed.cloud_url).await?;
    let after = server_work(client, bed).await?;
    let work = ServerWork {
        cloud_tokens: after.cloud_tokens - before.cloud_tokens,
        cloud_prefill: after.cloud_prefill - before.cloud_prefill,
        edge_prefill: after.edge_prefill - before.edge_prefill,
        edge_prefilled: after.edge_prefilled - before.edge_prefilled,
    };
    Ok(stats::summarize(&outcomes, work))
}

/// The servers' counters now: the cloud simulator's and the sum of the edge agents'.
async fn server_work(client: &reqwest::Client, bed: &Testbed) -> anyhow::Result<ServerWork> {
    let (mut edge_prefill, mut edge_prefilled) = (0.0, 0.0);
    for url in &bed.edge_metrics {
        edge_prefill += metric(client, url, "pice_edge_prompt_tokens_total").await?;
        edge_prefilled += metric(client, url, "pice_sim_prefilled_tokens_total").await?;
    }
    Ok(ServerWork {
        cloud_tokens: metric(client, &bed.cloud_url, "pice_sim_generated_tokens_total").await?,
        cloud_prefill: metric(client, &bed.cloud_url, "pice_sim_prefilled_tokens_total").await?,
        edge_prefill,
        edge_prefilled,
    })
}

/// The value of the metric `name` at `url`/metrics.
async fn metric(client: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<f64> {
    let text = client.get(format!("{url}/metrics")).send().await?.text().await?;
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
        .with_context(|| format!("{name} missing from the metrics at {url}"))
}

/// Waits (up to a minute) until the cloud server has nothing running or queued, so one level's
/// leftovers do not load the next.
async fn wait_cloud_idle(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        let busy = metric(client, url, "pice_sim_requests_running").await?
            + metric(client, url, "pice_sim_requests_waiting").await?;
        if busy == 0.0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the cloud simulator stayed busy for a minute after a load level")
}
