//! A load generator: concurrent `Expand` streams against one edge agent, kept up until stopped.

use std::time::Duration;

use pice_edge_agent::proto::ExpandRequest;
use pice_edge_agent::proto::edge_agent_client::EdgeAgentClient;
use tokio::task::JoinHandle;

/// Keeps `streams` expansions in flight against an agent.
pub struct Load {
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `streams` workers against the agent at `ip:50051`, each looping on long expansions.
    pub fn start(ip: &str, streams: usize) -> Self {
        let url = format!("http://{ip}:50051");
        let workers = (0..streams)
            .map(|i| {
                let url = url.clone();
                tokio::spawn(async move {
                    loop {
                        let _ = expand_once(&url, i).await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Self { workers }
    }

    /// Stops the workers; their in-flight streams are dropped (cancelled).
    pub fn stop(self) {
        for worker in self.workers {
            worker.abort();
        }
    }
}

async fn expand_once(url: &str, i: usize) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut client = EdgeAgentClient::connect(url.to_string()).await?;
    let request = ExpandRequest {
        request_id: format!("load-{i}"),
        question: "How can I improve my time management skills?".into(),
        sketch: vec!["Plan the day".into(), "Limit distractions".into()],
        point_index: 0,
        max_tokens: 400,
        ..ExpandRequest::default()
    };
    let mut stream = client.expand(request).await?.into_inner();
    while stream.message().await?.is_some() {}
    Ok(())
}
