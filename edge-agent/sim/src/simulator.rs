//! A simulated chat completion: the generator decides the text, the engine paces its tokens.

use super::ask::Ask;
use super::engine::{Engine, Prompt, TokenTicks};
use super::prefix_cache::prefix_blocks;
use super::profile::Profile;
use super::textgen::{Generated, TextGenerator, tokenize};
use pice_wire::generation::FinishReason;
use pice_wire::openai_wire::ChatMessage;

/// The simulator: one engine (the simulated GPU) and one text generator.
#[derive(Clone, Debug)]
pub struct Simulator {
    engine: Engine,
    generator: TextGenerator,
}

impl Simulator {
    /// Starts the engine for `profile` on the current Tokio runtime.
    pub fn start(profile: Profile, seed: u64) -> Self {
        Self { engine: Engine::start(profile), generator: TextGenerator::new(seed) }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Queues a completion of `messages`; its tokens arrive at the engine's pace.
    pub fn complete(&self, messages: &[ChatMessage], max_tokens: u32, seed: Option<u64>) -> SimulatedRun {
        let generated = self.generator.generate(&Ask::read(messages), max_tokens, seed);
        let tokens: Vec<String> = messages
            .iter()
            .flat_map(|m| std::iter::once(format!("<{}>", m.role)).chain(tokenize(&m.text())))
            .collect();
        // Role markers shape the cached prefix, as a chat template does, but are not counted.
        let prompt_tokens = u32::try_from(tokens.len() - messages.len()).unwrap_or(u32::MAX);
        let prompt = Prompt { tokens: prompt_tokens, prefix: prefix_blocks(&tokens) };
        let output_tokens = u32::try_from(generated.tokens.len()).unwrap_or(u32::MAX);
        let ticks = self.engine.submit(prompt, output_tokens);
        SimulatedRun { generated, prompt_tokens, ticks, emitted: 0 }
    }
}

/// One completion in progress; dropping it cancels the simulated sequence.
#[derive(Debug)]
pub struct SimulatedRun {
    generated: Generated,
    prompt_tokens: u32,
    ticks: TokenTicks,
    emitted: usize,
}

impl SimulatedRun {
    /// The next token once the engine has produced it, with its pseudo log-probability;
    /// `None` after the last one (or if the engine stopped).
    pub async fn next_token(&mut self) -> Option<(&str, f64)> {
        self.ticks.recv().await?;
        let index = self.emitted;
        self.emitted += 1;
        let token = self.generated.tokens.get(index)?;
        Some((token.as_str(), self.generated.logprobs.get(index).copied().unwrap_or(0.0)))
    }

    /// Whether every token was produced.
    pub fn is_complete(&self) -> bool {
        self.emitted == self.generated.tokens.len()
    }

    pub fn finish_reason(&self) -> FinishReason {
        self.generated.finish_reason
    }

    pub fn prompt_tokens(&self) -> u32 {
        self.prompt_tokens
    }

    pub fn completion_tokens(&self) -> u32 {
        u32::try_from(self.emitted).unwrap_or(u32::MAX)
    }

    /// Mean pseudo log-probability of the tokens produced so far.
    pub fn mean_logprob(&self) -> Option<f64> {
        let produced = &self.generated.logprobs[..self.emitted.min(self.generated.logprobs.len())];
        (!produced.is_empty()).then(|| produced.iter().sum::<f64>() / produced.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use pice_wire::generation::ExpansionRequest;
    use pice_wire::prompt;

    use super::*;
    use crate::profiles;

    #[tokio::test]
    async fn the_points_of_one_sketch_share_their_prompt_prefix_in_the_cache() {
        let simulator = Simulator::start(profiles::named("edge-smollm-cpu").unwrap(), 1);
        let sketch: Vec<String> = (1..=4).map(|i| format!("Point {i} about tides and the moon")).collect();
        let question = "Why does the sea have tides, and why are some tides higher than others?";
        let mut prompt_tokens = 0;
        for point_index in 0..2 {
            let request = ExpansionRequest {
                question: question.into(),
                sketch: sketch.clone(),
                point_index,
                ..ExpansionRequest::default()
            };
            let mut run = simulator.complete(&prompt::expansion_messages(&request), 4, Some(1));
            while run.next_token().await.is_some() {}
            prompt_tokens = run.prompt_tokens();
        }
        let stats = simulator.engine().stats();
        assert!(stats.prefix_cached_total >= 32, "the second point reuses the shared blocks: {stats:?}");
        assert_eq!(
            stats.prefilled_total + stats.prefix_cached_total,
            2 * u64::from(prompt_tokens),
            "every prompt token is either prefilled or cached"
        );
    }
}
