//! A load generator: concurrent `Expand` streams against one edge agent, kept up until stopped.

use std::future::Future;
use std::time::Duration;

use pice_wire::proto::ExpandRequest;
use pice_wire::proto::edge_agent_client::EdgeAgentClient;
use tokio::task::JoinHandle;

/// Tasks that each run a loop until stopped.
pub struct Workers {
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Spawns `count` tasks, the `i`-th running `work(i)`.
    pub fn start<F, Fut>(count: usize, work: F) -> Self
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self { tasks: (0..count).map(|i| tokio::spawn(work(i))).collect() }
    }

    /// Stops the tasks; what they have in flight is dropped (cancelled).
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Keeps `streams` expansions in flight against an agent.
pub struct Load {
    workers: Workers,
}

impl Load {
    /// Starts `streams` workers against the agent at `ip:50051`, each looping on long expansions.
    pub fn start(ip: &str, streams: usize) -> Self {
        let url = format!("http://{ip}:50051");
        let workers = Workers::start(streams, |i| {
            let url = url.clone();
            async move {
                loop {
                    let _ = expand_once(&url, i).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        Self { workers }
    }

    /// Stops the workers; their in-flight streams are dropped (cancelled).
    pub fn stop(self) {
        self.workers.stop();
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
