//! The simulator backend: expansions written by the simulator's text generator and paced by
//! its engine in-process, so an agent runs without any model server (tests, demos, `pice local`).
//! The text is simulated, not sampled: of the client's sampling parameters only the seed
//! changes it; temperature, top-p, penalties and stop sequences are accepted and not applied.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use crate::{Profile, SIMULATED_SUFFIX, Simulator};
use pice_wire::generation::{BackendError, ExpansionRequest, GenerationEvent, GenerationStream};
use pice_wire::generation::{ModelBackend, Usage};
use pice_wire::prompt;

/// A [`ModelBackend`] backed by an in-process [`Simulator`].
#[derive(Clone, Debug)]
pub struct SimBackend {
    simulator: Simulator,
    model: String,
}

impl SimBackend {
    /// Starts a simulator for `profile` on the current Tokio runtime. The model is reported as
    /// `<model>-simulated`, so nobody mistakes its output for a real model's.
    pub fn start(profile: Profile, seed: u64, model: Option<String>) -> Self {
        let model = model.unwrap_or_else(|| profile.model.clone());
        Self { simulator: Simulator::start(profile, seed), model: format!("{model}{SIMULATED_SUFFIX}") }
    }

    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// Registers the simulated engine's counters (`pice_sim_*`: tokens generated and
    /// prefilled, prompt tokens found in its prefix cache, ...) in `registry`, so an agent
    /// with this backend shows what its simulated device did.
    pub fn register_metrics(&self, registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
        let collector =
            crate::metrics::EngineCollector::new(self.simulator.engine().shared_stats(), &self.model)?;
        registry.register(Box::new(collector))
    }

    fn stream(&self, request: &ExpansionRequest) -> GenerationStream {
        let messages = prompt::expansion_messages(request);
        let mut run = self.simulator.complete(&messages, request.max_tokens, request.seed);
        let want_logprobs = request.want_logprobs;
        async_stream::stream! {
            while let Some((token, _)) = run.next_token().await {
                yield Ok(GenerationEvent::Text(token.to_owned()));
            }
            if !run.is_complete() {
                yield Err(BackendError::Stream("the simulated engine stopped".to_owned()));
                return;
            }
            yield Ok(GenerationEvent::Finished(Usage {
                finish_reason: run.finish_reason(),
                prompt_tokens: run.prompt_tokens(),
                completion_tokens: run.completion_tokens(),
                mean_logprob: if want_logprobs { run.mean_logprob() } else { None },
            }));
        }
        .boxed()
    }
}

impl ModelBackend for SimBackend {
    fn model(&self) -> &str {
        &self.model
    }

    fn generate(&self, request: ExpansionRequest) -> BoxFuture<'_, Result<GenerationStream, BackendError>> {
        let stream = self.stream(&request);
        async move { Ok(stream) }.boxed()
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        async { true }.boxed()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::profiles;
    use pice_wire::generation::FinishReason;

    #[tokio::test]
    async fn an_expansion_streams_text_that_names_the_point_then_its_usage() {
        let backend = SimBackend::start(profiles::named("edge-smollm-cpu").unwrap(), 1, None);
        let request = ExpansionRequest {
            question: "How do bees make honey?".into(),
            sketch: vec!["Bees collect nectar".into(), "Enzymes and evaporation thicken it".into()],
            point_index: 1,
            max_tokens: 100,
            want_logprobs: true,
            seed: None,
            ..ExpansionRequest::default()
        };
        let events: Vec<_> = backend.generate(request).await.unwrap().collect().await;
        let (last, texts) = events.split_last().unwrap();
        let text: String = texts
            .iter()
            .map(|e| match e.as_ref().unwrap() {
                GenerationEvent::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(text.starts_with("Enzymes and evaporation thicken it "), "{text}");
        let Ok(GenerationEvent::Finished(usage)) = last else { panic!("{last:?}") };
        assert_eq!(usage.completion_tokens as usize, texts.len());
        assert_eq!(usage.finish_reason, FinishReason::Stop);
        assert!(usage.prompt_tokens > 20 && usage.mean_logprob.is_some());
        assert_eq!(backend.model(), "smollm2-135m-instruct-simulated");
    }
}
