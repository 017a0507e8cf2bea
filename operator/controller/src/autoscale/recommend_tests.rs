//! Table-driven tests of the recommendation.

use super::*;
use crate::autoscale::Wake;

fn policy() -> Policy {
    Policy { min: 1, max: 8, capacity: 6, target: 4.0, tolerance: 0.1, up_window: 0.0, down_window: 120.0 }
}

/// Runs `(second, queue)` samples from `start` replicas and returns the replicas after each.
fn run(policy: Policy, start: i32, samples: &[(f64, Option<f64>)]) -> Vec<i32> {
    let quiet: Vec<_> = samples.iter().map(|(t, q)| (*t, *q, Wake::Quiet)).collect();
    replay(policy, start, &quiet)
}

/// Runs `(second, queue, wake-up signal)` samples from `start` replicas; the replicas after each.
fn replay(policy: Policy, start: i32, samples: &[(f64, Option<f64>, Wake)]) -> Vec<i32> {
    let mut history = History::default();
    let mut current = start;
    samples
        .iter()
        .map(|(t, q, wake)| {
            current = decide(&policy, current, *q, *wake, *t, &mut history).replicas;
            current
        })
        .collect()
}

#[test]
fn recommendations_follow_the_table() {
    struct Case {
        what: &'static str,
        policy: Policy,
        start: i32,
        samples: Vec<(f64, Option<f64>)>,
        expect: Vec<i32>,
    }
    let cases = [
        Case {
            what: "scale up at once",
            policy: policy(),
            start: 1,
            samples: vec![(0.0, Some(12.0))],
            expect: vec![3],
        },
        Case {
            what: "within tolerance holds",
            policy: policy(),
            start: 3,
            samples: vec![(0.0, Some(12.9))],
            expect: vec![3],
        },
        Case {
            what: "outside tolerance scales",
            policy: policy(),
            start: 3,
            samples: vec![(0.0, Some(13.5))],
            expect: vec![4],
        },
        Case {
            what: "clamped to capacity",
            policy: policy(),
            start: 1,
            samples: vec![(0.0, Some(100.0))],
            expect: vec![6],
        },
        Case {
            what: "clamped to max below capacity",
            policy: Policy { capacity: 20, ..policy() },
            start: 1,
            samples: vec![(0.0, Some(100.0))],
            expect: vec![8],
        },
        Case {
            what: "clamped to min",
            policy: policy(),
            start: 3,
            samples: vec![(0.0, Some(0.0)), (121.0, Some(0.0))],
            expect: vec![3, 1],
        },
        Case {
            what: "scale down waits for the window",
            policy: policy(),
            start: 1,
            samples: vec![(0.0, Some(20.0)), (60.0, Some(0.0)), (119.0, Some(0.0)), (121.0, Some(0.0))],
            expect: vec![5, 5, 5, 1],
        },
        Case {
            what: "scale up waits for its window",
            policy: Policy { up_window: 10.0, ..policy() },
            start: 1,
            samples: vec![(0.0, Some(1.0)), (5.0, Some(16.0)), (9.0, Some(16.0)), (11.0, Some(16.0))],
            expect: vec![1, 1, 1, 4],
        },
        Case {
            what: "unknown queue holds",
            policy: policy(),
            start: 5,
            samples: vec![(0.0, None), (500.0, None)],
            expect: vec![5, 5],
        },
        Case {
            what: "unknown queue still follows min and capacity",
            policy: Policy { min: 4, capacity: 3, ..policy() },
            start: 2,
            samples: vec![(0.0, None)],
            expect: vec![3],
        },
        Case {
            what: "scale from zero",
            policy: Policy { min: 0, ..policy() },
            start: 0,
            samples: vec![(0.0, Some(3.0))],
            expect: vec![1],
        },
        Case {
            what: "scale to zero after the window",
            policy: Policy { min: 0, ..policy() },
            start: 2,
            samples: vec![(0.0, Some(0.0)), (130.0, Some(0.0))],
            expect: vec![2, 0],
        },
    ];
    for case in cases {
        assert_eq!(run(case.policy, case.start, &case.samples), case.expect, "{}", case.what);
    }
}

#[test]
fn a_noisy_queue_does_not_flap() {
    let samples: Vec<_> =
        (0..60).map(|i| (f64::from(i) * 5.0, Some(if i % 2 == 0 { 14.0 } else { 10.0 }))).collect();
    let replicas = run(policy(), 3, &samples);
    let changes = replicas.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(changes <= 1, "replicas flapped: {replicas:?}");
}

#[test]
fn wake_ups_follow_the_table() {
    let zero = Policy { min: 0, ..policy() };
    let some = Some(0.0);
    let cases = [
        ("an increase wakes one replica", zero, 0, vec![(0.0, some, Wake::Requests(3))], vec![1]),
        ("no increase stays at zero", zero, 0, vec![(0.0, some, Wake::Quiet)], vec![0]),
        ("the baseline wakes nothing", zero, 0, vec![(0.0, some, Wake::Baseline)], vec![0]),
        ("an unknown count holds zero", zero, 0, vec![(0.0, some, Wake::Unknown)], vec![0]),
        ("woken without a measured queue", zero, 0, vec![(0.0, None, Wake::Requests(1))], vec![1]),
        (
            "an unknown count holds replicas above zero",
            zero,
            1,
            vec![(0.0, some, Wake::Unknown), (500.0, some, Wake::Unknown), (501.0, some, Wake::Quiet)],
            vec![1, 1, 0],
        ),
        (
            "clamped to capacity",
            Policy { capacity: 0, ..zero },
            0,
            vec![(0.0, some, Wake::Requests(2))],
            vec![0],
        ),
        ("clamped to max", Policy { max: 0, ..zero }, 0, vec![(0.0, some, Wake::Requests(2))], vec![0]),
        (
            "a queue above one replica still counts",
            zero,
            0,
            vec![(0.0, Some(9.0), Wake::Requests(1))],
            vec![3],
        ),
        ("a running replica is not woken", zero, 2, vec![(0.0, some, Wake::Requests(5))], vec![2]),
        (
            "the scale-up window does not delay a wake-up",
            Policy { up_window: 30.0, ..zero },
            0,
            vec![(0.0, some, Wake::Requests(1))],
            vec![1],
        ),
        (
            "the woken replica is kept for the down window while its pod starts",
            zero,
            0,
            vec![(0.0, some, Wake::Requests(1)), (5.0, some, Wake::Quiet), (121.0, some, Wake::Quiet)],
            vec![1, 1, 0],
        ),
    ];
    for (what, policy, start, samples, expect) in cases {
        assert_eq!(replay(policy, start, &samples), expect, "{what}");
    }
}

#[test]
fn a_wake_up_says_so_with_the_count() {
    let policy = Policy { min: 0, ..policy() };
    let decision = decide(&policy, 0, Some(0.0), Wake::Requests(3), 0.0, &mut History::default());
    assert_eq!(decision.woken_by, Some(3));
    assert_eq!(decision.reason, "wake-up: 3 request(s) found no edge replica → 1 recommended");
}
