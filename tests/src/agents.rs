//! Real edge agents (`pice-edge-agent`, simulator backend) run at the loopback IPs kwok gives
//! fake pods, so the operator reaches them exactly as it reaches pods in a real cluster.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::namespace::TestNamespace;
use crate::operator::binary;

/// Keeps one agent process running per ready pod matching a label selector.
pub struct AgentFleet {
    agents: Arc<Mutex<BTreeMap<String, Child>>>,
    task: JoinHandle<()>,
}

impl AgentFleet {
    /// Starts watching pods labelled `selector` in the test namespace.
    pub fn follow(ns: &TestNamespace, selector: &str) -> Self {
        let agents: Arc<Mutex<BTreeMap<String, Child>>> = Arc::default();
        let (pods, params, fleet) = (ns.api::<Pod>(), ListParams::default().labels(selector), agents.clone());
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&params).await {
                    let ips = list.items.iter().filter_map(|p| p.status.as_ref()?.pod_ip.clone());
                    let mut running = fleet.lock().await;
                    for ip in ips {
                        if !running.contains_key(&ip) {
                            running.insert(ip.clone(), start_agent(&ip));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Self { agents, task }
    }

    /// The pod IPs that have an agent.
    pub async fn ips(&self) -> Vec<String> {
        self.agents.lock().await.keys().cloned().collect()
    }

    /// Kills the agent at pod IP `ip` and does not start another there (its pod stays), as a
    /// node's agent that crashes while it serves.
    pub async fn kill(&self, ip: &str) {
        if let Some(agent) = self.agents.lock().await.get_mut(ip) {
            let _ = agent.kill().await;
        }
    }

    /// Stops following and kills every agent.
    pub async fn stop(self) {
        self.task.abort();
        for (_, mut agent) in std::mem::take(&mut *self.agents.lock().await) {
            let _ = agent.kill().await;
        }
    }
}

fn start_agent(ip: &str) -> Child {
    Command::new(binary("pice-edge-agent"))
        .args(["--backend", "sim", "--sim-profile", "edge-smollm-cpu", "--slots", "2", "--queue", "64"])
        .args(["--listen", &format!("{ip}:50051"), "--metrics-listen", &format!("{ip}:9090")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting pice-edge-agent at {ip}: {e}"))
}
