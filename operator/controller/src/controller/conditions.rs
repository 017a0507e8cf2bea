//! Standard `metav1.Condition`s: building them, keeping transition times, finding transitions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `Ready`: every tier serves with all its replicas.
pub const READY: &str = "Ready";
/// `Progressing`: a rollout is under way.
pub const PROGRESSING: &str = "Progressing";
/// `Degraded`: something needs a person (invalid spec, pods that cannot be scheduled).
pub const DEGRADED: &str = "Degraded";
/// `Placed`: every edge pool's nodes can hold `replicas.max` of each model.
pub const PLACED: &str = "Placed";
/// `ScalingActive`: edge queue depth is measured, so replicas follow it.
pub const SCALING: &str = "ScalingActive";

/// A condition's new state, before transition times are settled.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Condition type.
    pub type_: &'static str,
    /// Whether it holds.
    pub status: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl State {
    /// A condition state.
    pub fn new(type_: &'static str, status: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status, reason, message: message.into() }
    }
}

/// Turns states into conditions, keeping `lastTransitionTime` of those whose status is unchanged.
pub fn settle(
    states: Vec<State>,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    states
        .into_iter()
        .map(|state| {
            let status = if state.status { "True" } else { "False" };
            let unchanged = previous.iter().find(|c| c.type_ == state.type_ && c.status == status);
            Condition {
                type_: state.type_.into(),
                status: status.into(),
                reason: state.reason.into(),
                message: state.message,
                observed_generation: generation,
                last_transition_time: unchanged
                    .map_or_else(|| now.clone(), |c| c.last_transition_time.clone()),
            }
        })
        .collect()
}

/// Conditions whose status or reason changed (or that are new), worth an event.
pub fn transitions<'a>(previous: &[Condition], current: &'a [Condition]) -> Vec<&'a Condition> {
    current
        .iter()
        .filter(|c| {
            !previous.iter().any(|p| p.type_ == c.type_ && p.status == c.status && p.reason == c.reason)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid time"))
    }

    #[test]
    fn unchanged_status_keeps_its_transition_time() {
        let first = settle(vec![State::new(READY, true, "AllReady", "ok")], &[], Some(1), &at(10));
        let second = settle(vec![State::new(READY, true, "AllReady", "ok")], &first, Some(2), &at(20));
        assert_eq!(second[0].last_transition_time, at(10));
        assert_eq!(second[0].observed_generation, Some(2));
    }

    #[test]
    fn changed_status_gets_a_new_transition_time_and_is_a_transition() {
        let first = settle(vec![State::new(READY, false, "Waiting", "")], &[], Some(1), &at(10));
        let second = settle(vec![State::new(READY, true, "AllReady", "")], &first, Some(1), &at(20));
        assert_eq!(second[0].last_transition_time, at(20));
        assert_eq!(transitions(&first, &second).len(), 1);
        assert!(transitions(&second, &second).is_empty());
    }
}
