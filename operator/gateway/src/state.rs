//! The gateway's shared state: configuration, clients, replicas, estimates, metrics and
//! readiness, built once and shared by every request as `Arc<Gateway>`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::cloud::CloudClient;
use super::estimates::CloudEstimates;
use super::metrics::GatewayMetrics;
use super::mode::LatencyInputs;
use super::replicas::{Replica, Replicas};
use super::router::Router;
use super::scheduler::{self, Plan, ReplicaView};
use pice_api::RoutingMode;
use pice_api::gateway_config::GatewayConfig;

/// Request limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Budget of requests that set none.
    pub default_max_tokens: u32,
    /// Largest budget a request may ask for; larger ones are lowered to it.
    pub max_tokens_cap: u32,
}

/// Everything requests share.
pub struct Gateway {
    pub config: GatewayConfig,
    pub limits: Limits,
    pub cloud: CloudClient,
    pub replicas: Arc<Replicas>,
    pub metrics: GatewayMetrics,
    /// Which questions `auto` sends progressive.
    pub router: Router,
    estimates: Mutex<CloudEstimates>,
    cloud_seen: AtomicBool,
    ready_without_edge: bool,
    draining: AtomicBool,
    next_id: AtomicU64,
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        limits: Limits,
        cloud: CloudClient,
        replicas: Arc<Replicas>,
        metrics: GatewayMetrics,
    ) -> Self {
        let sketch = &config.routing.sketch;
        let estimates = CloudEstimates::new(positive(sketch.max_points), positive(sketch.words_per_point));
        Self {
            config,
            limits,
            cloud,
            replicas,
            metrics,
            router: Router::builtin().clone(),
            estimates: Mutex::new(estimates),
            cloud_seen: AtomicBool::new(false),
            ready_without_edge: false,
            draining: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        }
    }

    /// Lets the gateway turn ready without an edge replica (edge pools that may scale to zero).
    pub fn ready_without_edge(self, ready_without_edge: bool) -> Self {
        Self { ready_without_edge, ..self }
    }

    /// Consults `router` instead of the built-in model.
    pub fn with_router(self, router: Router) -> Self {
        Self { router, ..self }
    }

    /// A fresh id for a completion (`chatcmpl-pice-N`, `cmpl-pice-N`).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The model names clients may ask for: the pool's name and the cloud model's.
    pub fn models(&self) -> [&str; 2] {
        [self.config.pool.as_str(), self.cloud.model()]
    }

    /// The estimates, under their lock (never held across an await).
    pub fn estimates(&self) -> MutexGuard<'_, CloudEstimates> {
        self.estimates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ready once the cloud answered, and in a mode that may expand on the edge, once an edge
    /// replica reported ready (unless told to go without); not ready while draining.
    pub fn ready(&self) -> bool {
        let needs_edge = self.config.routing.mode != RoutingMode::Cloud && !self.ready_without_edge;
        !self.draining.load(Ordering::Acquire)
            && self.cloud_seen.load(Ordering::Acquire)
            && (!needs_edge || self.replicas.seen_ready())
    }

    /// Records that the cloud answered a probe.
    pub fn cloud_answered(&self) {
        self.cloud_seen.store(true, Ordering::Release);
    }

    /// Marks the gateway as shutting down (readiness turns false).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Expected tokens of the expansion of each point, capped by the per-point budget.
    pub fn point_tokens(&self, point_words: &[usize], budget: u32) -> Vec<f64> {
        let extra = self.estimates().expansion_extra_tokens.get();
        point_words.iter().map(|&words| (words as f64 + extra).min(f64::from(budget))).collect()
    }

    /// Plans points of `point_tokens` over the usable replicas.
    pub fn plan(&self, point_tokens: &[f64]) -> (Vec<Arc<Replica>>, Option<Plan>) {
        self.plan_with_prefix(point_tokens, &[], 0.0)
    }

    /// Plans points whose prompts share `shared` of their length with what the replicas at
    /// `holders` (addresses) already hold.
    pub fn plan_with_prefix(
        &self,
        point_tokens: &[f64],
        holders: &[String],
        shared: f64,
    ) -> (Vec<Arc<Replica>>, Option<Plan>) {
        let replicas = self.replicas.usable();
        let views: Vec<_> = replicas
            .iter()
            .map(|replica| {
                let cached = if holders.contains(&replica.addr) { shared } else { 0.0 };
                ReplicaView { cached, ..replica.view() }
            })
            .collect();
        let candidates = positive(self.config.routing.ensemble.candidates) as usize;
        let plan = scheduler::plan(point_tokens, &views, candidates);
        (replicas, plan)
    }

    /// The inputs of the `auto` decision for an answer of at most `max_tokens`, with a typical
    /// sketch planned over the current replicas.
    pub fn latency_inputs(&self, max_tokens: u32) -> LatencyInputs {
        let estimates = *self.estimates();
        let routing = &self.config.routing;
        let points = estimates.points.get().round().max(1.0) as usize;
        let budget = per_point_budget(max_tokens, points, routing.expansion.max_tokens_per_point);
        let typical_words = positive(routing.sketch.words_per_point) as usize;
        let (_, plan) = self.plan(&self.point_tokens(&vec![typical_words; points], budget));
        LatencyInputs {
            cloud_ttft: estimates.ttft.get(),
            cloud_tpot: estimates.tpot.get(),
            answer_tokens: estimates.answer_tokens.get().min(f64::from(max_tokens)),
            sketch_tokens: estimates.sketch_tokens.get(),
            edge_makespan: plan.map(|plan| plan.makespan),
        }
    }
}

/// Tokens each point may use: the pool's per-point budget, lowered so that the points together
/// stay within the answer's budget (at least 16 each, so a point can say something).
pub fn per_point_budget(max_tokens: u32, points: usize, max_tokens_per_point: i32) -> u32 {
    let share = max_tokens / u32::try_from(points.max(1)).unwrap_or(u32::MAX);
    share.max(16).min(positive(max_tokens_per_point))
}

/// A spec number that the schema keeps positive, as unsigned.
pub fn positive(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_point_budget_shares_the_answer_budget_within_bounds() {
        assert_eq!(per_point_budget(1000, 4, 160), 160);
        assert_eq!(per_point_budget(200, 4, 160), 50);
        assert_eq!(per_point_budget(20, 8, 160), 16);
        assert_eq!(per_point_budget(20, 8, 10), 10);
        assert_eq!(per_point_budget(100, 0, 160), 100);
    }
}
