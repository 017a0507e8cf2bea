//! The `pice-sim` binary over real HTTP: its OpenAI-compatible API, its "simulated" labels, the
//! OpenAI client against it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use futures::StreamExt;
use pice_wire::generation::{ExpansionRequest, FinishReason, GenerationEvent, ModelBackend};
use pice_wire::openai_client::{ChatOptions, OpenAiBackend};
use pice_wire::openai_wire::{ChatCompletion, ChatCompletionRequest, ModelList};
use pice_wire::prompt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `pice-sim` process; killed when dropped.
struct SimProcess {
    base_url: String,
    _child: Child,
}

async fn start_pice_sim(profile: &str) -> SimProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pice-sim"))
        .args(["--profile", profile, "--seed", "7", "--model", "smollm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = BufReader::new(stdout).lines().next_line().await.unwrap().expect("a first line");
    let addr = first.strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {first}"));
    SimProcess { base_url: format!("http://{addr}/v1"), _child: child }
}

fn expansion() -> ExpansionRequest {
    ExpansionRequest {
        question: "How does a heat pump heat a house?".into(),
        sketch: vec![
            "A refrigerant absorbs outdoor heat".into(),
            "A compressor raises its temperature".into(),
        ],
        point_index: 0,
        max_tokens: 100,
        want_logprobs: true,
        seed: None,
        ..ExpansionRequest::default()
    }
}

#[tokio::test]
async fn the_openai_backend_returns_the_expanded_text_from_a_running_pice_sim() {
    let sim = start_pice_sim("edge-smollm-cpu").await;
    let backend = OpenAiBackend::new(&sim.base_url, "smollm").unwrap();
    assert!(backend.ready().await);
    let events: Vec<_> = backend.generate(expansion()).await.unwrap().map(|e| e.unwrap()).collect().await;

    let (last, texts) = events.split_last().unwrap();
    let text: String = texts
        .iter()
        .map(|e| match e {
            GenerationEvent::Text(t) => t.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(text.starts_with("A refrigerant absorbs outdoor heat "), "{text}");
    let GenerationEvent::Finished(usage) = last else { panic!("{last:?}") };
    assert_eq!(usage.finish_reason, FinishReason::Stop);
    assert_eq!(usage.completion_tokens as usize, texts.len(), "usage chunk matches the deltas");
    assert!(usage.prompt_tokens > 30);
    assert!(usage.mean_logprob.is_some_and(|l| l < 0.0));

    let again: Vec<_> = backend.generate(expansion()).await.unwrap().map(|e| e.unwrap()).collect().await;
    assert_eq!(events, again, "the same seed and prompt give the same text");
}

#[tokio::test]
async fn a_whole_completion_from_pice_sim_is_the_streamed_text_in_one_event() {
    let sim = start_pice_sim("edge-smollm-cpu").await;
    let backend = OpenAiBackend::new(&sim.base_url, "smollm").unwrap();
    let messages = prompt::sketch_messages("How do tides work?", prompt::ClientContext::default(), 4, 6);
    let options =
        ChatOptions { max_tokens: Some(60), seed: Some(3), want_logprobs: false, ..ChatOptions::default() };
    let collect = |events: Vec<GenerationEvent>| {
        let (last, texts) = events.split_last().map(|(l, t)| (l.clone(), t.to_vec())).unwrap();
        let text: String = texts
            .iter()
            .map(|e| match e {
                GenerationEvent::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        let GenerationEvent::Finished(usage) = last else { panic!("{last:?}") };
        (texts.len(), text, usage.completion_tokens, usage.prompt_tokens)
    };
    let whole = backend.complete(messages.clone(), options.clone()).await.unwrap();
    let whole = collect(whole.map(|e| e.unwrap()).collect().await);
    let streamed = backend.chat(messages, options).await.unwrap();
    let streamed = collect(streamed.map(|e| e.unwrap()).collect().await);
    assert_eq!(whole.0, 1, "one text event");
    assert!(streamed.0 > 1, "a streamed answer comes in deltas");
    assert_eq!((&whole.1, whole.2, whole.3), (&streamed.1, streamed.2, streamed.3), "same text and usage");
    assert!(whole.2 > 0 && whole.1.starts_with("1. "), "{whole:?}");
}

#[tokio::test]
async fn pice_sim_labels_everything_it_returns_as_simulated() {
    let sim = start_pice_sim("edge-smollm-cpu").await;
    pice_wire::crypto::install_default_provider();
    let http = reqwest::Client::new();
    let request = ChatCompletionRequest {
        messages: prompt::sketch_messages("How do tides work?", prompt::ClientContext::default(), 4, 6),
        ..ChatCompletionRequest::default()
    };
    let response =
        http.post(format!("{}/chat/completions", sim.base_url)).json(&request).send().await.unwrap();
    assert_eq!(response.headers()["x-pice-simulated"], "true");
    let completion: ChatCompletion = response.json().await.unwrap();
    assert_eq!(completion.model, "smollm-simulated");
    assert_eq!(completion.system_fingerprint.as_deref(), Some("pice-sim"));
    let sketch = completion.choices[0].message.text().into_owned();
    let numbers: Vec<&str> = sketch.lines().map(|l| l.split_once(". ").unwrap().0).collect();
    assert_eq!(numbers, ["1", "2", "3", "4"], "{sketch}");
    let usage = completion.usage.unwrap();
    assert_eq!(usage.completion_tokens as usize, sketch.split_whitespace().count());

    let models: ModelList =
        http.get(format!("{}/models", sim.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(models.data[0].id, "smollm-simulated");
    let root = sim.base_url.trim_end_matches("/v1");
    let metrics = http.get(format!("{root}/metrics")).send().await.unwrap();
    assert_eq!(metrics.headers()["x-pice-simulated"], "true");
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("pice_sim_generated_tokens_total{model=\"smollm-simulated\"}"), "{metrics}");
    let prefilled =
        format!("pice_sim_prefilled_tokens_total{{model=\"smollm-simulated\"}} {}", usage.prompt_tokens);
    assert!(metrics.contains(&prefilled), "{metrics}");
    let bad = http.post(format!("{}/chat/completions", sim.base_url)).body("{").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let error: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
}
