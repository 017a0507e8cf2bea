//! The edge replicas the gateway knows: a gRPC client per edge agent, what its `Load` reports
//! say, and live estimates (link round trip, time to first token, time per token) of each.
//!
//! Discovery ([`super::discovery`]) sets the list of addresses; a poller asks every replica for
//! its load each interval. A replica is usable once it reported `ready` and until a call to it
//! fails at the transport level; the next good `Load` makes it usable again.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use pice_wire::proto::LoadRequest;
use pice_wire::proto::edge_agent_client::EdgeAgentClient;
use prometheus::IntGauge;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tracing::{debug, info, warn};

use super::estimates::{Ewma, Timing};
use super::scheduler::ReplicaView;

/// Longest wait for a `Load` answer.
const LOAD_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One edge agent.
pub struct Replica {
    pub addr: String,
    client: EdgeAgentClient<Channel>,
    state: Mutex<ReplicaState>,
}

#[derive(Clone, Copy, Debug)]
struct ReplicaState {
    link: Ewma,
    ttft: Ewma,
    tpot: Ewma,
    /// Running plus waiting, as last reported.
    reported_busy: usize,
    slots: usize,
    ready: bool,
    down: bool,
    /// Expansions this gateway has in flight there now.
    in_flight: usize,
}

impl Replica {
    /// A replica not yet heard from; its first expansions are estimated at `speed`.
    fn new(addr: &str, tls: Option<&ClientTlsConfig>, speed: Speed) -> Result<Self, tonic::transport::Error> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        let state = ReplicaState {
            link: Ewma::new(0.005),
            ttft: Ewma::new(speed.ttft),
            tpot: Ewma::new(speed.tpot),
            reported_busy: 0,
            slots: 1,
            ready: false,
            down: false,
            in_flight: 0,
        };
        let client = EdgeAgentClient::new(endpoint.connect_lazy());
        Ok(Self { addr: addr.to_owned(), client, state: Mutex::new(state) })
    }

    fn state(&self) -> MutexGuard<'_, ReplicaState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A client for a call; cheap (shares the connection).
    pub fn client(&self) -> EdgeAgentClient<Channel> {
        self.client.clone()
    }

    /// Whether new expansions may go here.
    pub fn usable(&self) -> bool {
        let state = self.state();
        state.ready && !state.down
    }

    /// What the scheduler needs.
    pub fn view(&self) -> ReplicaView {
        let state = self.state();
        ReplicaView {
            link: state.link.get(),
            ttft: state.ttft.get(),
            tpot: state.tpot.get(),
            occupied: state.reported_busy.max(state.in_flight),
            slots: state.slots,
            cached: 0.0,
        }
    }

    /// Counts an expansion in flight until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.state().in_flight += 1;
        InFlight(Arc::clone(self))
    }

    /// Folds in a finished expansion.
    pub fn observe(&self, timing: &Timing) {
        let mut state = self.state();
        state.ttft.observe(timing.ttft.as_secs_f64());
        if let Some(tpot) = timing.tpot {
            state.tpot.observe(tpot);
        }
    }

    /// Takes the replica out of rotation until its next good `Load`.
    pub fn mark_down(&self) {
        self.state().down = true;
    }

    async fn poll(&self) {
        let started = Instant::now();
        let mut request = tonic::Request::new(LoadRequest {});
        request.set_timeout(LOAD_TIMEOUT);
        let answer = tokio::time::timeout(LOAD_TIMEOUT, self.client().load(request)).await;
        let mut state = self.state();
        match answer {
            Ok(Ok(report)) => {
                let report = report.into_inner();
                state.link.observe(started.elapsed().as_secs_f64());
                state.reported_busy = (report.running + report.waiting) as usize;
                state.slots = report.slots.max(1) as usize;
                state.ready = report.ready;
                state.down = false;
            }
            Ok(Err(status)) => {
                debug!(addr = %self.addr, %status, "load report failed");
                state.down = true;
            }
            Err(_) => state.down = true,
        }
    }
}

/// The time to first token and per token a replica is estimated at before it has served.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Speed {
    ttft: f64,
    tpot: f64,
}

impl Speed {
    /// Before anything is measured: a small model on an edge GPU.
    const PRIOR: Self = Self { ttft: 0.15, tpot: 0.02 };

    /// The fastest a measured replica has been, else the prior. A new replica starts there so
    /// that the scheduler tries it: a pessimistic start would never be placed while the
    /// measured replicas are idle, and would never be measured.
    fn best_of(replicas: &[Arc<Replica>]) -> Self {
        let states: Vec<ReplicaState> = replicas.iter().map(|replica| *replica.state()).collect();
        let fastest = |pick: fn(&ReplicaState) -> Ewma, prior: f64| {
            let measured = states.iter().map(pick).filter(Ewma::measured).map(|ewma| ewma.get());
            measured.reduce(f64::min).unwrap_or(prior)
        };
        Self { ttft: fastest(|s| s.ttft, Self::PRIOR.ttft), tpot: fastest(|s| s.tpot, Self::PRIOR.tpot) }
    }
}

/// Holds one in-flight expansion on a replica.
pub struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

/// Every known replica.
pub struct Replicas {
    list: RwLock<Vec<Arc<Replica>>>,
    tls: Option<ClientTlsConfig>,
    seen_ready: AtomicBool,
    gauge: IntGauge,
}

impl Replicas {
    /// An empty set; `tls` secures the gRPC link when given; `gauge` follows the count.
    pub fn new(tls: Option<ClientTlsConfig>, gauge: IntGauge) -> Self {
        Self { list: RwLock::new(Vec::new()), tls, seen_ready: AtomicBool::new(false), gauge }
    }

    /// Replaces the set of addresses, keeping the state of replicas that stay.
    pub fn set(&self, addrs: &BTreeSet<String>) {
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        let before = list.len();
        list.retain(|replica| addrs.contains(&replica.addr));
        let fresh: Vec<&String> =
            addrs.iter().filter(|addr| !list.iter().any(|r| &&r.addr == addr)).collect();
        let speed = Speed::best_of(&list);
        for addr in fresh {
            match Replica::new(addr, self.tls.as_ref(), speed) {
                Ok(replica) => list.push(Arc::new(replica)),
                Err(error) => warn!(%addr, %error, "ignoring an edge endpoint that is not a valid address"),
            }
        }
        if list.len() != before {
            info!(endpoints = list.len(), "edge endpoints changed");
        }
        self.gauge.set(i64::try_from(list.len()).unwrap_or(i64::MAX));
    }

    /// Every known replica.
    pub fn all(&self) -> Vec<Arc<Replica>> {
        self.list.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The replicas new expansions may go to.
    pub fn usable(&self) -> Vec<Arc<Replica>> {
        self.all().into_iter().filter(|replica| replica.usable()).collect()
    }

    /// Whether some replica has ever reported ready (the gateway's readiness needs one).
    pub fn seen_ready(&self) -> bool {
        self.seen_ready.load(Ordering::Acquire)
    }

    /// Asks every replica for its load once.
    pub async fn poll_once(&self) {
        let replicas = self.all();
        futures::future::join_all(replicas.iter().map(|replica| replica.poll())).await;
        if replicas.iter().any(|replica| replica.usable()) {
            self.seen_ready.store(true, Ordering::Release);
        }
    }

    /// Polls every `interval`, forever.
    pub async fn poll_forever(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.poll_once().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use prometheus::IntGauge;

    use super::super::estimates::Timing;
    use super::super::scheduler;
    use super::Replicas;

    fn addrs(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|addr| (*addr).to_owned()).collect()
    }

    #[tokio::test]
    async fn a_joining_replica_is_tried_while_faster_measured_ones_are_idle() {
        let replicas = Replicas::new(None, IntGauge::new("endpoints", "test").unwrap());
        replicas.set(&addrs(&["10.0.0.1:50051", "10.0.0.2:50051"]));
        // Both measured well below the prior (0.15 s, 0.02 s per token).
        let fast = Timing { ttft: Duration::from_millis(40), tpot: Some(0.008), tokens: 100 };
        for replica in replicas.all() {
            replica.observe(&fast);
        }
        replicas.set(&addrs(&["10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"]));
        let all = replicas.all();
        let views: Vec<_> = all.iter().map(|replica| replica.view()).collect();
        let plan = scheduler::plan(&[80.0, 80.0, 80.0], &views, 1).unwrap();
        let joined = all.iter().position(|replica| replica.addr == "10.0.0.3:50051").unwrap();
        assert!(
            plan.assignments.iter().any(|replicas| replicas.contains(&joined)),
            "the new replica got no point: {plan:?}"
        );
    }
}
