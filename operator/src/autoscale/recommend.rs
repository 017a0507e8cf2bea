//! The replica recommendation: `ceil(queue / target)` with a tolerance band, HPA-style
//! stabilisation windows, and clamps to `min`, `max` and what fits on the nodes.

use std::collections::VecDeque;

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
}

/// Decides the replicas of a Deployment running `current`, given the measured total queue
/// (`None` when it could not be measured: then replicas hold) at time `now` (seconds).
pub fn decide(
    policy: &Policy,
    current: i32,
    queue: Option<f64>,
    now: f64,
    history: &mut History,
) -> Decision {
    let limit = |r: i32| r.clamp(policy.min, policy.max.max(policy.min)).min(policy.capacity);
    let Some(queue) = queue else {
        let reason = "queue depth unknown: holding replicas".into();
        return Decision { replicas: limit(current), reason };
    };
    let raw = raw_recommendation(policy, current, queue);
    let keep = policy.up_window.max(policy.down_window);
    if history.0.is_empty() {
        // Nothing is known of the past (a new pool or a restarted operator): count the current
        // replicas as recommended just now, so nothing scales down before a full window.
        history.record(now, current, keep);
    }
    history.record(now, raw, keep);
    let replicas = if raw > current && policy.up_window <= 0.0 {
        raw
    } else if raw > current {
        history.lowest_since(now - policy.up_window).max(current)
    } else {
        history.highest_since(now - policy.down_window).min(current)
    };
    let replicas = limit(replicas);
    let reason = format!("queue {queue:.1} for target {} per replica → {raw} recommended", policy.target);
    Decision { replicas, reason }
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
