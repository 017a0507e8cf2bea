//! Table-driven tests of the recommendation.

use super::*;

fn policy() -> Policy {
    Policy { min: 1, max: 8, capacity: 6, target: 4.0, tolerance: 0.1, up_window: 0.0, down_window: 120.0 }
}

/// Runs `(second, queue)` samples from `start` replicas and returns the replicas after each.
fn run(policy: Policy, start: i32, samples: &[(f64, Option<f64>)]) -> Vec<i32> {
    let mut history = History::default();
    let mut current = start;
    samples
        .iter()
        .map(|(t, q)| {
            current = decide(&policy, current, *q, *t, &mut history).replicas;
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
