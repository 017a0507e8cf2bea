//! `pice bench quality`: are progressive answers as good as cloud-only ones? For each question
//! of the given sets, a running PICE gateway answers it twice (`x-pice-mode: cloud` and
//! `progressive`), and a judge model compares the two answers in both orders (to cancel its
//! position bias). The report gives wins, ties and losses of the progressive answer with 95 %
//! intervals, per set and per label, and the answers' lengths. Any OpenAI-compatible servers
//! work: the gateway's cloud and edge models are whatever it was configured with; the judge is
//! `--judge-url` or, by default, the gateway's cloud model (asked in cloud mode).

pub mod judge;
pub mod tally;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

use self::judge::Verdict;
use self::tally::{Outcome, Tally, wilson};
use super::provenance::Provenance;
use pice_gateway::router::data;

/// `pice bench quality`'s arguments.
#[derive(Clone, Debug, Args)]
pub struct QualityArgs {
    /// The PICE gateway's root URL (before `/v1`).
    #[arg(long, env = "PICE_BENCH_GATEWAY")]
    pub gateway: String,
    /// The model name to ask the gateway for (its pool's name or its cloud model).
    #[arg(long, default_value = "assistant")]
    pub model: String,
    /// Labelled question files (`label;request` CSV).
    #[arg(long, value_delimiter = ',', default_value = "data/questions/vicuna80.csv")]
    pub questions: Vec<PathBuf>,
    /// Questions taken from each file (its first ones), 0 for all.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Token budget of each answer.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// The judge's root URL (before `/v1`); the gateway in cloud mode when unset.
    #[arg(long)]
    pub judge_url: Option<String>,
    /// The judge's model name (with --judge-url).
    #[arg(long, requires = "judge_url")]
    pub judge_model: Option<String>,
    /// What the models are, for the report (e.g. "SmolLM2-135M on llama.cpp, CPU").
    #[arg(long, default_value = "not stated")]
    pub models: String,
    /// The report to write.
    #[arg(long, default_value = "docs/benchmarks/quality.md")]
    pub out: PathBuf,
}

/// One question's two answers and the judgements.
struct Judged {
    set: usize,
    suitable: bool,
    outcome: Outcome,
    unclear: usize,
    cloud_tokens: u64,
    progressive_tokens: u64,
    /// The mode the progressive request ran in (admission or the model may have sent it to
    /// the cloud), and why.
    progressive_mode: String,
    progressive_reason: String,
}

/// An answer from an OpenAI-compatible chat endpoint.
struct Answered {
    text: String,
    tokens: u64,
    mode: String,
    /// The gateway's `pice.reason`: why that mode.
    reason: String,
}

async fn ask(
    client: &reqwest::Client,
    root: &str,
    body: &Value,
    mode: Option<&str>,
) -> anyhow::Result<Answered> {
    let url = format!("{}/v1/chat/completions", root.trim_end_matches('/'));
    let mut request = client.post(&url).json(body);
    if let Some(mode) = mode {
        request = request.header("x-pice-mode", mode);
    }
    let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let reply: Value = response.json().await.with_context(|| format!("{url} sent no JSON"))?;
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {reply}");
    Ok(Answered {
        text: reply["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned(),
        tokens: reply["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        mode: reply["pice"]["mode"].as_str().unwrap_or("").to_owned(),
        reason: reply["pice"]["reason"].as_str().unwrap_or("").to_owned(),
    })
}

/// Runs the comparison and writes the report.
pub async fn run(args: QualityArgs) -> anyhow::Result<()> {
    let provenance = Provenance::at_start();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(900)).build()?;
    let mut sets = Vec::new();
    for file in &args.questions {
        let mut questions = data::read(file).map_err(anyhow::Error::msg)?;
        if args.limit > 0 {
            questions.truncate(args.limit);
        }
        sets.push((file.display().to_string(), questions));
    }
    let (judge_url, judge_model, judge_mode) = match &args.judge_url {
        Some(url) => (url.clone(), args.judge_model.clone().unwrap_or_default(), None),
        None => (args.gateway.clone(), args.model.clone(), Some("cloud")),
    };
    let mut judged = Vec::new();
    for (set, (name, questions)) in sets.iter().enumerate() {
        for (index, question) in questions.iter().enumerate() {
            let body = json!({"model": args.model, "messages": [{"role": "user", "content": question.question}],
                              "max_tokens": args.max_tokens, "temperature": 0, "seed": 1});
            let cloud = ask(&client, &args.gateway, &body, Some("cloud")).await?;
            let progressive = ask(&client, &args.gateway, &body, Some("progressive")).await?;
            let mut verdicts = Vec::new();
            for (first, second) in [(&cloud.text, &progressive.text), (&progressive.text, &cloud.text)] {
                let body = json!({"model": judge_model, "messages": judge::messages(&question.question, first, second),
                                  "max_tokens": 8, "temperature": 0, "seed": 1});
                verdicts.push(judge::verdict(&ask(&client, &judge_url, &body, judge_mode).await?.text));
            }
            let outcome = tally::combine(verdicts[0], verdicts[1]);
            eprintln!("{name} #{}: {outcome:?} ({:?}, {:?})", index + 1, verdicts[0], verdicts[1]);
            judged.push(Judged {
                set,
                suitable: question.suitable,
                outcome,
                unclear: verdicts.iter().filter(|v| **v == Verdict::Unclear).count(),
                cloud_tokens: cloud.tokens,
                progressive_tokens: progressive.tokens,
                progressive_mode: progressive.mode,
                progressive_reason: progressive.reason,
            });
        }
    }
    let names: Vec<&str> = sets.iter().map(|(name, _)| name.as_str()).collect();
    let report = report(&args, &provenance, &names, &judged)?;
    std::fs::write(&args.out, report).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

fn report(
    args: &QualityArgs,
    provenance: &Provenance,
    sets: &[&str],
    judged: &[Judged],
) -> anyhow::Result<String> {
    let mut md = String::from("# Answer quality: progressive against cloud-only\n\n");
    provenance.write(&mut md)?;
    writeln!(md, "- Models: {}", args.models)?;
    writeln!(
        md,
        "- Judge: {}; each question judged twice, the answers in both orders; a side wins a question only by winning one order without losing the other. {} of {} verdicts were unreadable and count as ties.\n",
        args.judge_url.as_deref().map_or("the gateway's cloud model".to_owned(), |url| format!(
            "{url} ({})",
            args.judge_model.as_deref().unwrap_or("")
        )),
        judged.iter().map(|j| j.unclear).sum::<usize>(),
        2 * judged.len()
    )?;
    md.push_str("| group | questions | progressive ran | wins | ties | losses | win rate (95 % interval) | loss rate (95 % interval) | tokens cloud-only / progressive |\n|---|---|---|---|---|---|---|---|---|\n");
    let mut row = |label: &str, group: Vec<&Judged>| -> anyhow::Result<()> {
        let mut tally = Tally::default();
        group.iter().for_each(|j| tally.add(j.outcome));
        let n = tally.total();
        let rate = |k: usize| {
            let (low, high) = wilson(k, n);
            if n == 0 {
                "–".to_owned()
            } else {
                format!("{:.0} % ({:.0}–{:.0} %)", 100.0 * k as f64 / n as f64, 100.0 * low, 100.0 * high)
            }
        };
        let mean = |f: fn(&Judged) -> u64| {
            if n == 0 { 0.0 } else { group.iter().map(|j| f(j) as f64).sum::<f64>() / n as f64 }
        };
        let ran = group.iter().filter(|j| j.progressive_mode == "progressive").count();
        writeln!(
            md,
            "| {label} | {n} | {ran} | {} | {} | {} | {} | {} | {:.0} / {:.0} |",
            tally.wins,
            tally.ties,
            tally.losses,
            rate(tally.wins),
            rate(tally.losses),
            mean(|j| j.cloud_tokens),
            mean(|j| j.progressive_tokens)
        )?;
        Ok(())
    };
    row("all", judged.iter().collect())?;
    for (index, name) in sets.iter().enumerate() {
        row(name, judged.iter().filter(|j| j.set == index).collect())?;
    }
    row("labelled suitable", judged.iter().filter(|j| j.suitable).collect())?;
    row("labelled unsuitable", judged.iter().filter(|j| !j.suitable).collect())?;
    writeln!(
        md,
        "\n\"Progressive ran\" counts the questions whose progressive request was answered progressively; the others were answered cloud-only (the cloud declined to sketch, or admission sent them there) and compare the cloud with itself. Why the progressive requests that did not run progressive went cloud-only: {}.",
        cloud_only_reasons(judged)
    )?;
    Ok(md)
}

/// `reason count` of the progressive requests the gateway answered cloud-only, or "none".
fn cloud_only_reasons(judged: &[Judged]) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for j in judged.iter().filter(|j| j.progressive_mode != "progressive") {
        *counts.entry(j.progressive_reason.as_str()).or_default() += 1;
    }
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts.iter().map(|(reason, n)| format!("`{reason}` {n}")).collect::<Vec<_>>().join(", ")
}
