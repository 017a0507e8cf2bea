//! The point-ordered streaming merger (docs/design.md, step 7).
//!
//! Points arrive while the sketch is still being written: the dispatcher sends each point's
//! channel as soon as the point is sent to the edge, then how the sketch ended. Every point
//! runs in its own task and sends its text into its own channel as it is written. The merger
//! reads the channels in point order: the head point's text goes out delta by delta as it
//! arrives, while later points keep writing into their channels (the buffer); when the head
//! finishes, the next point's buffered text is flushed at once and its live text follows.
//! Points are numbered (`1. `, `\n2. `, ...), so a marker a model wrote itself is left out
//! ([`super::point_text`]). Dropping the merged stream (a client that went
//! away) aborts the dispatcher, which aborts every point task and cancels their gRPC calls.

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use super::answer::{AnswerEnd, AnswerEvent, PiceInfo};
use super::point::{PointEvent, PointOutcome, Source};
use super::point_text::PointText;

/// What the dispatcher tells the merger, in this order: each point, then the sketch's end.
#[derive(Debug)]
pub enum Dispatched {
    /// The next point's channel.
    Point(UnboundedReceiver<PointEvent>),
    /// The sketch is over.
    SketchEnd(SketchEnd),
}

/// How the sketch ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SketchEnd {
    /// Tokens the cloud read and wrote for it (zero when it broke off).
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Whether the sketch stream broke off, so the answer has only the points before.
    pub cut: bool,
}

/// Merges the dispatched points (in sketch order) into the answer's events; `dispatcher` is
/// the task sending them and owning the point tasks, aborted when the stream is dropped;
/// `pice` holds the decision.
pub fn ordered(
    mut dispatched: UnboundedReceiver<Dispatched>,
    dispatcher: JoinSet<()>,
    mut pice: PiceInfo,
) -> BoxStream<'static, AnswerEvent> {
    async_stream::stream! {
        let _abort_on_drop = dispatcher;
        let mut outcomes = Vec::new();
        let mut sketch = SketchEnd { cut: true, ..SketchEnd::default() };
        while let Some(message) = dispatched.recv().await {
            let mut point = match message {
                Dispatched::Point(point) => point,
                Dispatched::SketchEnd(end) => {
                    sketch = end;
                    continue;
                }
            };
            let mut heading = Some(heading(outcomes.len()));
            let mut shown = PointText::default();
            let outcome = loop {
                match point.recv().await {
                    Some(PointEvent::Text(text)) => {
                        let text = shown.push(&text);
                        if !text.is_empty() {
                            yield AnswerEvent::Text(heading.take().unwrap_or_default() + &text);
                        }
                    }
                    Some(PointEvent::Done(outcome)) => break Some(outcome),
                    None => break None,
                }
            };
            // A point that ended shows its number even if all its text was a marker.
            let rest = shown.finish();
            if !rest.is_empty() || (outcome.is_some() && heading.is_some()) {
                yield AnswerEvent::Text(heading.take().unwrap_or_default() + &rest);
            }
            outcomes.push(outcome);
        }
        pice.cloud_prompt_tokens = pice.cloud_prompt_tokens.saturating_add(sketch.prompt_tokens);
        pice.cloud_tokens = pice.cloud_tokens.saturating_add(sketch.completion_tokens);
        if sketch.cut {
            pice.degraded = true;
            pice.fallbacks = pice.fallbacks.saturating_add(1);
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

    fn preamble() -> PiceInfo {
        let decision = Decision { mode: RoutingMode::Progressive, reason: Reason::Requested };
        PiceInfo::new(decision, RoutingMode::Auto, None)
    }

    /// What the sketch cost: 12 prompt tokens read, 30 written.
    const SKETCHED: SketchEnd = SketchEnd { prompt_tokens: 12, completion_tokens: 30, cut: false };

    /// The dispatcher's channel holding `points` and, when given, the sketch's end.
    fn dispatched(
        points: Vec<UnboundedReceiver<PointEvent>>,
        end: Option<SketchEnd>,
    ) -> UnboundedReceiver<Dispatched> {
        let (sender, receiver) = unbounded_channel();
        for point in points {
            sender.send(Dispatched::Point(point)).unwrap();
        }
        if let Some(end) = end {
            sender.send(Dispatched::SketchEnd(end)).unwrap();
        }
        receiver
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
    async fn markers_a_model_wrote_itself_are_left_out_and_every_point_keeps_its_number() {
        let points: Vec<_> = [vec!["2", ". Sleep", " well.\n3"], vec!["4."], vec!["Eat early."]]
            .into_iter()
            .map(|pieces| {
                let (sender, receiver) = unbounded_channel();
                for piece in pieces {
                    sender.send(PointEvent::Text(piece.into())).unwrap();
                }
                sender.send(PointEvent::Done(outcome(Source::Edge, 3))).unwrap();
                receiver
            })
            .collect();
        let merged = ordered(dispatched(points, Some(SKETCHED)), JoinSet::new(), preamble());
        let text: String = merged
            .filter_map(|event| async move {
                match event {
                    AnswerEvent::Text(text) => Some(text),
                    _ => None,
                }
            })
            .collect()
            .await;
        assert_eq!(text, "1. Sleep well.\n2. \n3. Eat early.");
    }

    #[tokio::test]
    async fn the_head_streams_at_once_and_a_later_point_that_finished_first_waits_its_turn() {
        let (head_tx, head_rx) = unbounded_channel();
        let (tail_tx, tail_rx) = unbounded_channel();
        tail_tx.send(PointEvent::Text("Tail done early.".into())).unwrap();
        tail_tx.send(PointEvent::Done(outcome(Source::Sketch, 0))).unwrap();
        head_tx.send(PointEvent::Text("Head".into())).unwrap();
        let mut merged =
            ordered(dispatched(vec![head_rx, tail_rx], Some(SKETCHED)), JoinSet::new(), preamble());

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
        let (sender, receiver) = unbounded_channel();
        sender.send(Dispatched::Point(rx)).unwrap();
        tasks.spawn(async move {
            let _keep_open = sender;
            std::future::pending::<()>().await;
        });
        let mut merged = ordered(receiver, tasks, preamble());
        assert_eq!(merged.next().await, Some(AnswerEvent::Text("1. x".into())));
        drop(merged);
        let ended = tokio::time::timeout(Duration::from_secs(2), alive_rx.recv()).await;
        assert_eq!(ended, Ok(None), "the task was aborted and dropped its sender");
    }

    #[tokio::test]
    async fn a_point_dispatched_later_joins_the_answer_and_a_cut_sketch_marks_it_degraded() {
        let (sender, receiver) = unbounded_channel();
        let (head_tx, head_rx) = unbounded_channel();
        sender.send(Dispatched::Point(head_rx)).unwrap();
        let mut merged = ordered(receiver, JoinSet::new(), preamble());
        head_tx.send(PointEvent::Text("Head.".into())).unwrap();
        assert_eq!(merged.next().await, Some(AnswerEvent::Text("1. Head.".into())));
        head_tx.send(PointEvent::Done(outcome(Source::Edge, 2))).unwrap();
        let (late_tx, late_rx) = unbounded_channel();
        sender.send(Dispatched::Point(late_rx)).unwrap();
        late_tx.send(PointEvent::Text("Late.".into())).unwrap();
        late_tx.send(PointEvent::Done(outcome(Source::Edge, 3))).unwrap();
        assert_eq!(merged.next().await, Some(AnswerEvent::Text("\n2. Late.".into())));
        sender.send(Dispatched::SketchEnd(SketchEnd { cut: true, ..SKETCHED })).unwrap();
        drop(sender);
        let Some(AnswerEvent::End(end)) = merged.next().await else { panic!("expected the end") };
        assert_eq!((end.pice.points, end.pice.degraded, end.pice.fallbacks), (2, true, 1));
        assert_eq!((end.pice.edge_tokens, end.pice.cloud_tokens, end.pice.cloud_prompt_tokens), (5, 30, 12));
    }

    #[tokio::test]
    async fn a_dispatcher_that_dies_before_the_sketch_ends_leaves_a_degraded_answer() {
        let mut merged = ordered(dispatched(Vec::new(), None), JoinSet::new(), preamble());
        let Some(AnswerEvent::End(end)) = merged.next().await else { panic!("expected the end") };
        assert!(end.pice.degraded);
    }
}
