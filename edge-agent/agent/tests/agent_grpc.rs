//! The edge agent over real gRPC on 127.0.0.1 with the simulator backend: streaming, backpressure,
//! deadlines, cancellation, load, health and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestAgent, eventually, expand_request, metric, settings, sim_backend};
use futures::StreamExt;
use pice_edge_agent::SERVICE_NAME;
use pice_wire::openai_client::OpenAiBackend;
use pice_wire::proto::{ExpandChunk, ExpandRequest, LoadReport, LoadRequest};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn health_client(agent: &TestAgent) -> HealthClient<Channel> {
    let channel =
        Channel::from_shared(format!("http://{}", agent.grpc_addr)).unwrap().connect().await.unwrap();
    HealthClient::new(channel)
}

async fn load(agent: &TestAgent) -> LoadReport {
    agent.client().await.load(LoadRequest {}).await.unwrap().into_inner()
}

#[tokio::test]
async fn expand_streams_text_that_expands_the_point_and_ends_with_usage() {
    let agent = TestAgent::start(settings(2, 2), sim_backend(2.0)).await;
    let request = ExpandRequest { want_logprobs: true, ..expand_request(1) };
    let chunks: Vec<ExpandChunk> =
        agent.client().await.expand(request).await.unwrap().into_inner().map(|c| c.unwrap()).collect().await;

    let (last, texts) = chunks.split_last().unwrap();
    let text: String = texts.iter().map(|c| c.text.as_str()).collect();
    assert!(texts.len() > 3 && texts.iter().all(|c| c.done.is_none()), "streamed in pieces");
    assert!(text.starts_with("A compressor raises its temperature "), "{text}");
    let done = last.done.as_ref().expect("the last chunk carries the usage");
    assert_eq!(done.finish_reason, "stop");
    assert_eq!(done.completion_tokens as usize, texts.len());
    assert!(done.prompt_tokens > 30, "the prompt holds question and sketch: {}", done.prompt_tokens);
    assert!(done.mean_logprob.is_some_and(|l| l < 0.0));

    let report = load(&agent).await;
    assert!(report.recent_tokens_per_second > 0.0);
    assert_eq!((report.model.as_str(), report.ready), ("test-model-simulated", true));
    let metrics = agent.metrics().await;
    assert_eq!(metric(&metrics, "pice_edge_tokens_total"), Some(texts.len() as f64));
    assert_eq!(metric(&metrics, "pice_edge_prompt_tokens_total"), Some(f64::from(done.prompt_tokens)));
    assert_eq!(metric(&metrics, "pice_edge_expansion_seconds_count"), Some(1.0));
    agent.shutdown().await;
}

#[tokio::test]
async fn a_full_agent_answers_resource_exhausted_at_once_and_load_shows_the_queue() {
    let agent = TestAgent::start(settings(2, 2), sim_backend(200.0)).await;
    let mut client = agent.client().await;
    let mut held = Vec::new();
    for point in [0, 1, 2, 0] {
        held.push(client.expand(expand_request(point)).await.unwrap().into_inner());
    }
    let queued = eventually(Duration::from_secs(5), || async {
        let report = load(&agent).await;
        (report.running, report.waiting, report.slots) == (2, 2, 2)
    });
    assert!(queued.await, "two running and two waiting: {:?}", load(&agent).await);

    let started = Instant::now();
    let refused = client.expand(expand_request(1)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once, not queued: {:?}",
        started.elapsed()
    );
    let metrics = agent.metrics().await;
    assert_eq!(metric(&metrics, "pice_edge_rejected_total"), Some(1.0));
    assert_eq!(metric(&metrics, "pice_edge_queue_depth"), Some(2.0));
    assert_eq!(metric(&metrics, "pice_edge_running"), Some(2.0));
}

#[tokio::test]
async fn a_deadline_shorter_than_the_expansion_returns_deadline_exceeded() {
    let sim = sim_backend(100.0);
    let agent = TestAgent::start(settings(2, 2), Arc::clone(&sim) as _).await;
    let mut client = agent.client().await;

    let by_field = ExpandRequest { deadline_ms: 250, ..expand_request(0) };
    let mut by_grpc_timeout = tonic::Request::new(expand_request(2));
    by_grpc_timeout.set_timeout(Duration::from_millis(250));
    for request in [tonic::Request::new(by_field), by_grpc_timeout] {
        let started = Instant::now();
        let mut stream = client.expand(request).await.unwrap().into_inner();
        let status = loop {
            match stream.next().await.expect("the stream ends with a status") {
                Ok(chunk) => assert!(chunk.done.is_none(), "finished before the deadline"),
                Err(status) => break status,
            }
        };
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    }
    assert!(
        eventually(Duration::from_secs(3), || async {
            sim.simulator().engine().stats().cancelled_total == 2
        })
        .await
    );
    assert_eq!(sim.simulator().engine().stats().running, 0, "generation stopped at the deadline");
    assert_eq!(metric(&agent.metrics().await, "pice_edge_deadline_exceeded_total"), Some(2.0));
}

#[tokio::test]
async fn a_client_that_drops_the_stream_frees_the_slot_and_stops_generation() {
    let sim = sim_backend(50.0);
    let agent = TestAgent::start(settings(1, 0), Arc::clone(&sim) as _).await;
    let mut client = agent.client().await;
    let mut stream = client.expand(expand_request(0)).await.unwrap().into_inner();
    stream.next().await.unwrap().unwrap();
    stream.next().await.unwrap().unwrap();
    assert_eq!(load(&agent).await.running, 1);
    drop(stream);

    assert!(eventually(Duration::from_secs(3), || async { load(&agent).await.running == 0 }).await);
    let engine = sim.simulator().engine();
    assert!(eventually(Duration::from_secs(3), || async { engine.stats().cancelled_total == 1 }).await);
    let tokens = engine.stats().tokens_total;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(engine.stats().tokens_total, tokens, "no more tokens after the cancel");
    assert_eq!(engine.stats().completed_total, 0);
    assert_eq!(metric(&agent.metrics().await, "pice_edge_cancelled_total"), Some(1.0));
    // The single slot is free again: a new expansion runs to the end.
    let chunks: Vec<_> = client
        .expand(ExpandRequest { max_tokens: 3, ..expand_request(1) })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert!(chunks.last().unwrap().as_ref().unwrap().done.is_some());
}

#[tokio::test]
async fn shutdown_lets_an_expansion_in_flight_finish() {
    let mut agent = TestAgent::start(settings(1, 1), sim_backend(50.0)).await;
    let mut stream = agent.client().await.expand(expand_request(0)).await.unwrap().into_inner();
    stream.next().await.unwrap().unwrap();
    agent.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!agent.has_stopped(), "the agent waits for the expansion");
    let rest: Vec<ExpandChunk> = stream.map(|c| c.unwrap()).collect().await;
    assert!(rest.last().unwrap().done.is_some(), "the expansion finished");
    assert!(eventually(Duration::from_secs(5), || async { agent.has_stopped() }).await);
    agent.shutdown().await;
}

#[tokio::test]
async fn the_health_service_reports_serving() {
    let agent = TestAgent::start(settings(1, 1), sim_backend(1.0)).await;
    let mut health = health_client(&agent).await;
    for service in ["", SERVICE_NAME] {
        let request = HealthCheckRequest { service: service.into() };
        let status = health.check(request).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn an_agent_whose_model_server_is_down_is_not_serving_and_says_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let backend = Arc::new(OpenAiBackend::new(&url, "qwen").unwrap());
    let agent = TestAgent::start(settings(1, 1), backend).await;

    let mut health = health_client(&agent).await;
    let request = HealthCheckRequest { service: SERVICE_NAME.into() };
    let status = health.check(request).await.unwrap().into_inner().status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    assert!(!load(&agent).await.ready);
    let mut stream = agent.client().await.expand(expand_request(0)).await.unwrap().into_inner();
    let status = stream.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(metric(&agent.metrics().await, "pice_edge_backend_errors_total"), Some(1.0));
}

#[tokio::test]
async fn a_request_for_a_point_outside_the_sketch_is_an_invalid_argument() {
    let agent = TestAgent::start(settings(1, 1), sim_backend(1.0)).await;
    let status = agent.client().await.expand(expand_request(3)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("outside the sketch"), "{}", status.message());
}

#[tokio::test]
async fn metrics_carry_every_agent_series_labelled_only_by_model() {
    let agent = TestAgent::start(settings(1, 1), sim_backend(1.0)).await;
    let metrics = agent.metrics().await;
    for name in [
        "pice_edge_queue_depth",
        "pice_edge_running",
        "pice_edge_rejected_total",
        "pice_edge_tokens_total",
        "pice_edge_prompt_tokens_total",
        "pice_edge_expansion_seconds_bucket",
        "pice_edge_backend_errors_total",
        "pice_edge_cancelled_total",
        "pice_edge_deadline_exceeded_total",
    ] {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing"));
        let labels = &line[line.find('{').unwrap() + 1..line.find('}').unwrap()];
        let keys: Vec<&str> = labels.split(',').map(|kv| kv.split('=').next().unwrap()).collect();
        let expected: &[&str] = if name.ends_with("_bucket") { &["le", "model"] } else { &["model"] };
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected, "{line}");
    }
}
