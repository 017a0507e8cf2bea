//! The replica recommendation: `ceil(queue / target)` with a tolerance band, HPA-style
//! stabilisation windows, and clamps to `min`, `max` and what fits on the nodes.

use std::collections::VecDeque;

use super::wakeup::Wake;

/// Bounds and timing of one edge Deployment's scaling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// `replicas.min`.
    pub min: i32,
    /// `replicas.max`.
    pub max: i32,
    /// Replicas that fit on the pool's nodes.
    pub capacity: i32,
    /// Waiting plus running requests wanted per replica.
    pub target: f64,
    /// Relative change of the per-replica queue ignored as noise (0.1 = 10 %).
    pub tolerance: f64,
    /// Seconds a higher recommendation must persist before scaling up.
    pub up_window: f64,
    /// Scale down only to the highest recommendation of this many past seconds.
    pub down_window: f64,
}

/// Recommendations of the recent past, as (seconds, replicas).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History(VecDeque<(f64, i32)>);

/// What to do now and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Replicas to ask for.
    pub replicas: i32,
    /// Short reason, for status and events.
    pub reason: String,
    /// Requests that found no edge replica and woke the Deployment from zero.
    pub woken_by: Option<u64>,
}

/// Decides the replicas of a Deployment running `current`, given the measured total queue
/// (`None` when it could not be measured: then replicas hold unless woken) and the gateways'
/// wake-up signal, at time `now` (seconds).
///
/// A wake-up asks for at least one replica at once, whatever `up_window` says: like KEDA's
/// activation, going from zero to one is not smoothed, since the requests that woke the pool
/// are already being answered by the cloud alone. The woken replica is recorded as a
/// recommendation, so the down window keeps it while its pod starts.
pub fn decide(
    policy: &Policy,
    current: i32,
    queue: Option<f64>,
    wake: Wake,
    now: f64,
    history: &mut History,
) -> Decision {
    let limit = |r: i32| r.clamp(policy.min, policy.max.max(policy.min)).min(policy.capacity);
    let hold = |reason: &str| Decision { replicas: limit(current), reason: reason.into(), woken_by: None };
    let woken_by = wake.wakes(current);
    // At zero there is no replica to measure (a PromQL query may find no sample): the wake-up
    // alone decides.
    let Some(queue) = queue.or(woken_by.map(|_| 0.0)) else {
        return hold("queue depth unknown: holding replicas");
    };
    let raw = raw_recommendation(policy, current, queue).max(i32::from(woken_by.is_some()));
    let keep = policy.up_window.max(policy.down_window);
    if history.0.is_empty() {
        // Nothing is known of the past (a new pool or a restarted operator): count the current
        // replicas as recommended just now, so nothing scales down before a full window.
        history.record(now, current, keep);
    }
    history.record(now, raw, keep);
    let replicas = if raw > current && (policy.up_window <= 0.0 || woken_by.is_some()) {
        raw
    } else if raw > current {
        history.lowest_since(now - policy.up_window).max(current)
    } else {
        history.highest_since(now - policy.down_window).min(current)
    };
    let replicas = limit(replicas);
    if replicas == 0 && current > 0 && !wake.allows_zero() {
        return hold("gateway wake-up count unknown: not scaling to zero");
    }
    let reason = match woken_by {
        Some(n) => format!("wake-up: {n} request(s) found no edge replica → {raw} recommended"),
        None => format!("queue {queue:.1} for target {} per replica → {raw} recommended", policy.target),
    };
    Decision { replicas, reason, woken_by }
}

fn raw_recommendation(policy: &Policy, current: i32, queue: f64) -> i32 {
    let wanted = (queue / policy.target).ceil() as i32;
    if current > 0 {
        let ratio = queue / (f64::from(current) * policy.target);
        if (ratio - 1.0).abs() <= policy.tolerance {
            return current;
        }
    }
    wanted.max(0)
}

impl History {
    fn record(&mut self, now: f64, replicas: i32, keep: f64) {
        self.0.push_back((now, replicas));
        while self.0.front().is_some_and(|(t, _)| *t < now - keep) {
            self.0.pop_front();
        }
    }

    fn lowest_since(&self, since: f64) -> i32 {
        self.since(since).min().unwrap_or(0)
    }

    fn highest_since(&self, since: f64) -> i32 {
        self.since(since).max().unwrap_or(0)
    }

    fn since(&self, since: f64) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().filter(move |(t, _)| *t >= since).map(|(_, r)| *r)
    }
}

#[cfg(test)]
#[path = "recommend_tests.rs"]
mod tests;
