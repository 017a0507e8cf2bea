//! The point-ordered streaming merger (docs/design.md, step 7).
//!
//! Every point runs in its own task and sends its text into its own channel as it is written.
//! The merger reads the channels in point order: the head point's text goes out delta by
//! delta as it arrives, while later points keep writing into their channels (the buffer); when
//! the head finishes, the next point's buffered text is flushed at once and its live text
//! follows. Points are numbered (`1. `, `\n2. `, ...). Dropping the merged stream (a client
//! that went away) aborts every point task, which cancels their gRPC calls.

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use super::answer::{AnswerEnd, AnswerEvent, PiceInfo};
use super::point::{PointEvent, PointOutcome, Source};

/// Merges the points' channels (in sketch order) into the answer's events; `tasks` are the
/// point tasks, aborted when the stream is dropped; `pice` holds what the sketch cost.
pub fn ordered(
    points: Vec<UnboundedReceiver<PointEvent>>,
    tasks: JoinSet<()>,
    pice: PiceInfo,
) -> BoxStream<'static, AnswerEvent> {
    async_stream::stream! {
        let _abort_on_drop = tasks;
        let mut outcomes = Vec::with_capacity(points.len());
        for (index, mut point) in points.into_iter().enumerate() {
            let mut heading = Some(heading(index));
            let outcome = loop {
                match point.recv().await {
                    Some(PointEvent::Text(text)) => match heading.take() {
                        Some(heading) => yield AnswerEvent::Text(heading + &text),
                        None => yield AnswerEvent::Text(text),
                    },
                    Some(PointEvent::Done(outcome)) => break Some(outcome),
                    None => break None,
                }
            };
            outcomes.push(outcome);
        }
        yield AnswerEvent::End(summary(&outcomes, pice));
    }
    .boxed()
}

fn heading(index: usize) -> String {
    if index == 0 { "1. ".to_owned() } else { format!("\n{}. ", index + 1) }
}

/// The end of the answer: what every tier read and wrote for it and how the points were
/// written. A point whose task died without an outcome counts as degraded.
fn summary(outcomes: &[Option<PointOutcome>], mut pice: PiceInfo) -> AnswerEnd {
    pice.points = outcomes.len();
    for outcome in outcomes {
        let Some(outcome) = outcome else {
            pice.degraded = true;
            continue;
        };
        pice.fallbacks = pice.fallbacks.saturating_add(outcome.fallbacks);
        pice.degraded |= outcome.source == Source::Sketch;
        pice.edge_tokens = pice.edge_tokens.saturating_add(outcome.edge_tokens);
        pice.cloud_tokens = pice.cloud_tokens.saturating_add(outcome.cloud_tokens);
        pice.edge_prompt_tokens = pice.edge_prompt_tokens.saturating_add(outcome.edge_prompt_tokens);
        pice.cloud_prompt_tokens = pice.cloud_prompt_tokens.saturating_add(outcome.cloud_prompt_tokens);
    }
    AnswerEnd { finish_reason: "stop", pice }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use tokio::sync::mpsc::unbounded_channel;

    use super::*;
    use crate::mode::{Decision, Reason};
    use pice_api::RoutingMode;

    /// What the sketch cost: 12 prompt tokens read, 30 written.
    fn preamble() -> PiceInfo {
        let decision = Decision { mode: RoutingMode::Progressive, reason: Reason::Requested };
        PiceInfo {
            cloud_tokens: 30,
            cloud_prompt_tokens: 12,
            ..PiceInfo::new(decision, RoutingMode::Auto, None)
        }
    }

    fn outcome(source: Source, tokens: u32) -> PointOutcome {
        PointOutcome {
            source,
            fallbacks: u32::from(source != Source::Edge),
            edge_tokens: tokens,
            cloud_tokens: 0,
            edge_prompt_tokens: if tokens > 0 { 50 } else { 0 },
            cloud_prompt_tokens: 0,
        }
    }

    #[tokio::test]
    async fn the_head_streams_at_once_and_a_later_point_that_finished_first_waits_its_turn() {
        let (head_tx, head_rx) = unbounded_channel();
        let (tail_tx, tail_rx) = unbounded_channel();
        tail_tx.send(PointEvent::Text("Tail done early.".into())).unwrap();
        tail_tx.send(PointEvent::Done(outcome(Source::Sketch, 0))).unwrap();
        head_tx.send(PointEvent::Text("Head".into())).unwrap();
        let mut merged = ordered(vec![head_rx, tail_rx], JoinSet::new(), preamble());

        assert_eq!(merged.next().await, Some(AnswerEvent::Text("1. Head".into())));
        let waiting = tokio::time::timeout(Duration::from_millis(50), merged.next()).await;
        assert!(waiting.is_err(), "the tail must not overtake the unfinished head");
        head_tx.send(PointEvent::Text(" streams.".into())).unwrap();
        head_tx.send(PointEvent::Done(outcome(Source::Edge, 4))).unwrap();
        assert_eq!(merged.next().await, Some(AnswerEvent::Text(" streams.".into())));
        assert_eq!(merged.next().await, Some(AnswerEvent::Text("\n2. Tail done early.".into())));
        let Some(AnswerEvent::End(end)) = merged.next().await else { panic!("expected the end") };
        let usage = end.pice.usage();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
            (62, 34, 96),
            "sketch + edge"
        );
        assert_eq!((end.pice.points, end.pice.fallbacks, end.pice.degraded), (2, 1, true));
        assert_eq!((end.pice.edge_tokens, end.pice.cloud_tokens), (4, 30));
    }

    #[tokio::test]
    async fn dropping_the_merged_stream_aborts_the_point_tasks() {
        let (tx, rx) = unbounded_channel::<PointEvent>();
        let (alive_tx, mut alive_rx) = unbounded_channel::<()>();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let _alive = alive_tx;
            tx.send(PointEvent::Text("x".into())).unwrap();
            std::future::pending::<()>().await;
        });
        let mut merged = ordered(vec![rx], tasks, preamble());
        assert_eq!(merged.next().await, Some(AnswerEvent::Text("1. x".into())));
        drop(merged);
        let ended = tokio::time::timeout(Duration::from_secs(2), alive_rx.recv()).await;
        assert_eq!(ended, Ok(None), "the task was aborted and dropped its sender");
    }
}
