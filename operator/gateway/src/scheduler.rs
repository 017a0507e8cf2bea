//! The expansion scheduler: assigns sketch points to edge replicas by earliest estimated
//! finish, longest point first (docs/design.md, step 4).
//!
//! A replica runs `slots` expansions at once; one that already holds `occupied` expansions
//! (its own queue plus what this gateway sent it) makes a new one wait
//! `floor(occupied / slots)` service times, and decodes more slowly the fuller its batch is
//! (`tpot · (1 + BATCH_SLOWDOWN · busy slots / slots)`, the shape of the simulator's profiles).
//! A point of `m` tokens then finishes after `wait + link + ttft + m · tpot_batch`. Points are
//! placed greedily, longest first, each on the replica where it finishes earliest, and each
//! placement occupies that replica for the next.
//! With an ensemble every point gets `candidates` replicas, distinct while there are enough.
//!
//! A replica that already holds an answer's earlier points holds their prompt prefix in its
//! cache, so it starts the next point sooner (`ttft · (1 − cached)`): placing by earliest
//! finish then trades that reuse against spreading the points over idle replicas.

/// How much slower a token gets on a replica whose slots are all busy, relative to an idle one
/// (published batch sweeps: x1.7 from 1 to 8 sequences on an edge GPU, x1.7 from 1 to 16 on
/// an H100; see the simulator's profiles). Also spreads points over equally fast replicas.
const BATCH_SLOWDOWN: f64 = 0.7;

/// What the scheduler knows about one replica.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplicaView {
    /// Round trip of the network link, seconds.
    pub link: f64,
    /// Seconds to the first token when a slot is free (prefill included).
    pub ttft: f64,
    /// Seconds per generated token.
    pub tpot: f64,
    /// Expansions the replica holds now, running or waiting.
    pub occupied: usize,
    /// Expansions it runs at once.
    pub slots: usize,
    /// Share of a new point's prefill the replica skips because it holds the prompt's prefix
    /// (0 to 1).
    pub cached: f64,
}

impl ReplicaView {
    /// Seconds until a point of `tokens` tokens would be finished if it were sent now, where a
    /// typical expansion takes `service_tokens` tokens.
    pub fn finish(&self, tokens: f64, service_tokens: f64) -> f64 {
        let slots = self.slots.max(1);
        let rounds = (self.occupied / slots) as f64;
        let batch = (self.occupied % slots) as f64 / slots as f64;
        let tpot = self.tpot * (1.0 + BATCH_SLOWDOWN * batch);
        let service = self.ttft + service_tokens * tpot;
        rounds * service + self.link + self.ttft * (1.0 - self.cached.clamp(0.0, 1.0)) + tokens * tpot
    }
}

/// Where each point goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Per point (in sketch order), the indexes of its replicas, one per candidate.
    pub assignments: Vec<Vec<usize>>,
    /// Estimated seconds until the last point is finished.
    pub makespan: f64,
}

/// Plans `point_tokens` (expected tokens per point, in sketch order) over `replicas`;
/// `None` when there is no replica.
pub fn plan(point_tokens: &[f64], replicas: &[ReplicaView], candidates: usize) -> Option<Plan> {
    if replicas.is_empty() {
        return None;
    }
    let service_tokens = mean(point_tokens);
    let mut load: Vec<ReplicaView> = replicas.to_vec();
    let mut assignments = vec![Vec::new(); point_tokens.len()];
    let mut makespan: f64 = 0.0;
    for point in longest_first(point_tokens) {
        let tokens = point_tokens[point];
        for _ in 0..candidates.max(1) {
            let chosen = &assignments[point];
            let (replica, finish) = earliest(&load, tokens, service_tokens, chosen);
            load[replica].occupied += 1;
            makespan = makespan.max(finish);
            assignments[point].push(replica);
        }
    }
    Some(Plan { assignments, makespan })
}

/// Replica indexes ordered by when a point of `tokens` tokens would finish there.
pub fn rank(replicas: &[ReplicaView], tokens: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..replicas.len()).collect();
    order.sort_by(|&a, &b| replicas[a].finish(tokens, tokens).total_cmp(&replicas[b].finish(tokens, tokens)));
    order
}

/// The replica where the point finishes first, preferring ones not in `chosen`.
fn earliest(load: &[ReplicaView], tokens: f64, service_tokens: f64, chosen: &[usize]) -> (usize, f64) {
    let fresh = |index: &usize| !chosen.contains(index) || chosen.len() >= load.len();
    (0..load.len())
        .filter(fresh)
        .map(|index| (index, load[index].finish(tokens, service_tokens)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, load[0].finish(tokens, service_tokens)))
}

fn longest_first(point_tokens: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..point_tokens.len()).collect();
    order.sort_by(|&a, &b| point_tokens[b].total_cmp(&point_tokens[a]));
    order
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn replica(tpot: f64, occupied: usize, slots: usize) -> ReplicaView {
        ReplicaView { link: 0.01, ttft: 0.1, tpot, occupied, slots, cached: 0.0 }
    }

    #[test]
    fn the_longest_point_goes_to_the_fastest_replica() {
        let replicas = [replica(0.05, 0, 1), replica(0.01, 0, 1)];
        let plan = plan(&[10.0, 80.0], &replicas, 1).unwrap();
        assert_eq!(plan.assignments, vec![vec![0], vec![1]]);
        let slow_short = 0.01 + 0.1 + 10.0 * 0.05;
        let fast_long = 0.01 + 0.1 + 80.0 * 0.01;
        assert!((plan.makespan - f64::max(slow_short, fast_long)).abs() < 1e-9);
    }

    #[test]
    fn a_full_replica_is_avoided_while_another_has_a_free_slot() {
        let replicas = [replica(0.01, 4, 4), replica(0.01, 1, 4)];
        let plan = plan(&[40.0, 40.0, 40.0], &replicas, 1).unwrap();
        assert_eq!(plan.assignments, vec![vec![1], vec![1], vec![1]]);
    }

    #[test]
    fn points_spread_once_a_replica_has_no_free_slot() {
        let replicas = [replica(0.01, 0, 1), replica(0.01, 0, 1)];
        let plan = plan(&[30.0, 30.0, 30.0, 30.0], &replicas, 1).unwrap();
        let on_first = plan.assignments.iter().filter(|a| a[0] == 0).count();
        assert_eq!(on_first, 2, "{plan:?}");
    }

    #[test]
    fn equally_fast_idle_replicas_share_the_points() {
        let replicas = [replica(0.01, 0, 8), replica(0.01, 0, 8)];
        let plan = plan(&[30.0, 30.0, 30.0, 30.0], &replicas, 1).unwrap();
        let on_first = plan.assignments.iter().filter(|a| a[0] == 0).count();
        assert_eq!(on_first, 2, "{plan:?}");
    }

    #[test]
    fn ensemble_candidates_of_a_point_go_to_distinct_replicas_while_there_are_enough() {
        let replicas = [replica(0.01, 0, 8), replica(0.03, 0, 8), replica(0.02, 0, 8)];
        let plan = plan(&[20.0], &replicas, 2).unwrap();
        assert_eq!(plan.assignments, vec![vec![0, 2]]);
        let plan = super::plan(&[20.0], &replicas[..1], 3).unwrap();
        assert_eq!(plan.assignments, vec![vec![0, 0, 0]]);
    }

    #[test]
    fn a_replica_holding_the_prefix_wins_until_its_batch_costs_more_than_the_prefill_saved() {
        let holder = |occupied| ReplicaView { ttft: 1.0, cached: 0.9, ..replica(0.01, occupied, 8) };
        let idle = ReplicaView { ttft: 1.0, ..replica(0.01, 0, 8) };
        let plan = plan(&[40.0], &[holder(1), idle], 1).unwrap();
        assert_eq!(plan.assignments, vec![vec![0]], "reuse: 0.1 s of prefill instead of 1 s");
        let plan = super::plan(&[40.0], &[holder(8), idle], 1).unwrap();
        assert_eq!(plan.assignments, vec![vec![1]], "parallelism: the holder's slots are all busy");
    }

    #[test]
    fn no_replica_means_no_plan_and_rank_orders_by_finish() {
        assert_eq!(plan(&[10.0], &[], 1), None);
        let replicas = [replica(0.05, 0, 1), replica(0.01, 0, 1), replica(0.01, 3, 1)];
        assert_eq!(rank(&replicas, 20.0), vec![1, 0, 2]);
    }
}
