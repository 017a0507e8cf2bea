//! The mode decision: cloud-only or progressive, per request (docs/design.md, step 2).
//!
//! A request with a field only a cloud-only answer keeps goes to the cloud (unless the cloud was
//! named anyway). `auto` goes progressive only when the question is suitable, is not a continued
//! conversation (a follow-up usually builds on the previous answer rather than splitting into
//! independent points) and the estimated progressive latency beats cloud-only under the
//! current load:
//!
//! - `T_cloud = ttft_cloud + n · tpot_cloud`
//! - `T_prog  = ttft_cloud + s · tpot_cloud + makespan_edge`
//!
//! where `ttft_cloud` is the measured queue wait plus prefill, `n` the expected answer length,
//! `s` the expected sketch length, and `makespan_edge` the scheduler's estimate of
//! `max_i(link + W_e(i) + prefill_e + m_i · tpot_e(i))` over the current replicas.

use pice_api::RoutingMode;

/// Why a mode was chosen; a fixed set, used as a metrics label and in the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The pool's mode or the request's `x-pice-mode` header named the mode.
    Requested,
    /// The classifier judged the question unsuitable for sketch-and-expand.
    Unsuitable,
    /// The request continues a conversation.
    Conversation,
    /// No edge replica is available.
    NoEdges,
    /// Cloud-only is estimated to finish first.
    CloudFaster,
    /// Progressive is estimated to finish first.
    ProgressiveFaster,
    /// The sketch had no usable point, so the cloud answered alone.
    EmptySketch,
    /// The request has a field only a cloud-only answer keeps (`contract`).
    Contract,
    /// The edge would miss the point deadline: admission sent the request to the cloud.
    EdgeBusy,
    /// The cloud answered directly instead of sketching.
    Declined,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Unsuitable => "unsuitable",
            Self::Conversation => "conversation",
            Self::NoEdges => "no_edges",
            Self::CloudFaster => "cloud_faster",
            Self::ProgressiveFaster => "progressive_faster",
            Self::EmptySketch => "empty_sketch",
            Self::Contract => "contract",
            Self::EdgeBusy => "edge_busy",
            Self::Declined => "declined",
        }
    }
}

/// The mode to run and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// `Cloud` or `Progressive`, never `Auto`.
    pub mode: RoutingMode,
    pub reason: Reason,
}

impl Decision {
    /// Whether the request wanted the edge tier but found no usable replica: `auto` with no
    /// edges, or progressive while `has_edge` says none is usable (evaluated only then). The
    /// gateway counts these so that the operator can wake edge pools scaled to zero.
    pub fn finds_no_edge(self, has_edge: impl FnOnce() -> bool) -> bool {
        match (self.mode, self.reason) {
            (_, Reason::NoEdges) => true,
            (RoutingMode::Progressive, _) => !has_edge(),
            _ => false,
        }
    }
}

/// What the latency comparison needs, in seconds and tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyInputs {
    pub cloud_ttft: f64,
    pub cloud_tpot: f64,
    /// Expected tokens of a cloud-only answer.
    pub answer_tokens: f64,
    /// Expected tokens of a sketch.
    pub sketch_tokens: f64,
    /// Estimated seconds until the last point is expanded; `None` without replicas.
    pub edge_makespan: Option<f64>,
}

impl LatencyInputs {
    /// `T_cloud`.
    pub fn cloud_only(&self) -> f64 {
        self.cloud_ttft + self.answer_tokens * self.cloud_tpot
    }

    /// `T_prog`, when there are replicas.
    pub fn progressive(&self) -> Option<f64> {
        let makespan = self.edge_makespan?;
        Some(self.cloud_ttft + self.sketch_tokens * self.cloud_tpot + makespan)
    }
}

/// What the decision knows about the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    pub suitable: bool,
    pub conversation: bool,
}

/// Decides the mode; `question` and `latency` are only evaluated in `auto` (the latter only for
/// a suitable question), so a named mode costs nothing. A request with a field only a
/// cloud-only answer keeps (`blocked`) is cloud-only whatever the mode asked for (the gateway
/// refuses one that asked for progressive before deciding).
pub fn decide(
    requested: RoutingMode,
    blocked: bool,
    question: impl FnOnce() -> Question,
    latency: impl FnOnce() -> LatencyInputs,
) -> Decision {
    let decision = |mode, reason| Decision { mode, reason };
    if requested == RoutingMode::Cloud {
        return decision(requested, Reason::Requested);
    }
    if blocked {
        return decision(RoutingMode::Cloud, Reason::Contract);
    }
    if requested != RoutingMode::Auto {
        return decision(requested, Reason::Requested);
    }
    let question = question();
    if question.conversation {
        return decision(RoutingMode::Cloud, Reason::Conversation);
    }
    if !question.suitable {
        return decision(RoutingMode::Cloud, Reason::Unsuitable);
    }
    let inputs = latency();
    match inputs.progressive() {
        None => decision(RoutingMode::Cloud, Reason::NoEdges),
        Some(progressive) if progressive < inputs.cloud_only() => {
            decision(RoutingMode::Progressive, Reason::ProgressiveFaster)
        }
        Some(_) => decision(RoutingMode::Cloud, Reason::CloudFaster),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITABLE: Question = Question { suitable: true, conversation: false };

    fn inputs(cloud_tpot: f64, edge_makespan: Option<f64>) -> LatencyInputs {
        LatencyInputs {
            cloud_ttft: 0.2,
            cloud_tpot,
            answer_tokens: 300.0,
            sketch_tokens: 40.0,
            edge_makespan,
        }
    }

    #[test]
    fn a_named_mode_is_obeyed_without_estimating() {
        for mode in [RoutingMode::Cloud, RoutingMode::Progressive] {
            let decision = decide(mode, false, || unreachable!(), || unreachable!());
            assert_eq!(decision, Decision { mode, reason: Reason::Requested });
        }
    }

    #[test]
    fn a_request_only_cloud_only_can_keep_goes_to_the_cloud_in_auto() {
        let decision = decide(RoutingMode::Auto, true, || unreachable!(), || unreachable!());
        assert_eq!(decision, Decision { mode: RoutingMode::Cloud, reason: Reason::Contract });
        let decision = decide(RoutingMode::Cloud, true, || unreachable!(), || unreachable!());
        assert_eq!(decision.reason, Reason::Requested);
    }

    #[test]
    fn auto_keeps_unsuitable_questions_and_conversations_on_the_cloud() {
        let unsuitable = Question { suitable: false, conversation: false };
        assert_eq!(
            decide(RoutingMode::Auto, false, || unsuitable, || unreachable!()).reason,
            Reason::Unsuitable
        );
        let conversation = Question { suitable: true, conversation: true };
        assert_eq!(
            decide(RoutingMode::Auto, false, || conversation, || unreachable!()).reason,
            Reason::Conversation
        );
    }

    #[test]
    fn auto_goes_progressive_when_the_cloud_is_loaded_and_edges_are_quick() {
        // T_cloud = 0.2 + 300 * 0.05 = 15.2; T_prog = 0.2 + 40 * 0.05 + 3.0 = 5.2.
        let decision = decide(RoutingMode::Auto, false, || SUITABLE, || inputs(0.05, Some(3.0)));
        assert_eq!(decision, Decision { mode: RoutingMode::Progressive, reason: Reason::ProgressiveFaster });
    }

    #[test]
    fn auto_stays_on_the_cloud_when_edges_are_saturated_or_absent() {
        // T_cloud = 0.2 + 300 * 0.01 = 3.2; T_prog = 0.2 + 0.4 + 9.0 = 9.6.
        let decision = decide(RoutingMode::Auto, false, || SUITABLE, || inputs(0.01, Some(9.0)));
        assert_eq!(decision, Decision { mode: RoutingMode::Cloud, reason: Reason::CloudFaster });
        let decision = decide(RoutingMode::Auto, false, || SUITABLE, || inputs(0.01, None));
        assert_eq!(decision.reason, Reason::NoEdges);
    }

    #[test]
    fn requests_that_wanted_the_edge_and_found_none_are_the_ones_that_wake_it() {
        let no_edges = decide(RoutingMode::Auto, false, || SUITABLE, || inputs(0.01, None));
        assert!(no_edges.finds_no_edge(|| unreachable!()), "auto with no edges");
        let progressive = decide(RoutingMode::Progressive, false, || unreachable!(), || unreachable!());
        assert!(progressive.finds_no_edge(|| false), "progressive with no edge");
        assert!(!progressive.finds_no_edge(|| true), "progressive with an edge");
        let cloud = decide(RoutingMode::Cloud, false, || unreachable!(), || unreachable!());
        assert!(!cloud.finds_no_edge(|| unreachable!()), "cloud asked for");
        let unsuitable = Question { suitable: false, conversation: false };
        let unsuitable = decide(RoutingMode::Auto, false, || unsuitable, || unreachable!());
        assert!(!unsuitable.finds_no_edge(|| unreachable!()), "auto with an unsuitable question");
    }
}
