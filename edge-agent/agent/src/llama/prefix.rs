//! Which tokens each llama.cpp sequence holds in the shared KV cache, and where a new prompt
//! should start: in a free sequence, or after the longest prefix another sequence already holds.
//!
//! The KV cache is unified, so copying a prefix from a donor sequence into another only tags the
//! donor's cells with the new sequence id: the prefix is stored and attended to once. A finished
//! sequence stays resident as a donor until its sequence id is needed for a new prompt (the least
//! recently finished goes first) or the cache runs out of cells.

use llama_cpp_2::token::LlamaToken;

/// Shorter common prefixes are prefilled again: copying them saves less than it costs to look.
pub(super) const MIN_SHARED_TOKENS: usize = 32;

/// A llama.cpp sequence id, `0..slots`.
pub(super) type SeqId = i32;

/// What a sequence id holds.
#[derive(Debug)]
enum Holder {
    Free,
    /// A generation in progress.
    Live,
    /// A finished generation's tokens, kept as a prefix donor; `finished` orders evictions.
    Resident {
        finished: u64,
    },
}

#[derive(Debug)]
struct Sequence {
    holder: Holder,
    prefix_id: String,
    /// The prompt and the generated tokens fed back so far, whether decoded yet or not.
    tokens: Vec<LlamaToken>,
    /// How many of `tokens` are in the KV cache.
    decoded: usize,
}

/// Where a new prompt starts.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// In `seq`, after clearing `evict` (a resident whose id is taken) and copying the first
    /// `shared` tokens of `donor` (or keeping them, when `donor` is `seq` itself).
    Start { seq: SeqId, evict: Option<SeqId>, donor: Option<(SeqId, usize)> },
    /// A live sequence is still prefilling the prefix this prompt shares: start once it is in.
    WaitForDonor,
    /// Every sequence id is live.
    Full,
}

/// The sequence ids of the engine's context and what they hold.
#[derive(Debug)]
pub(super) struct Sequences {
    sequences: Vec<Sequence>,
    share_prefix: bool,
    finished: u64,
}

impl Sequences {
    pub fn new(slots: usize, share_prefix: bool) -> Self {
        let free =
            || Sequence { holder: Holder::Free, prefix_id: String::new(), tokens: Vec::new(), decoded: 0 };
        Self { sequences: (0..slots).map(|_| free()).collect(), share_prefix, finished: 0 }
    }

    /// Where `prompt` should start; nothing changes until [`Sequences::start`].
    pub fn place(&self, prompt: &[LlamaToken], prefix_id: &str) -> Placement {
        let donor = self.donor(prompt, prefix_id);
        if let Some((donor, shared)) = donor
            && self.sequences[donor].decoded < shared
        {
            return Placement::WaitForDonor;
        }
        let donor = donor.map(|(index, shared)| (seq_id(index), shared));
        if let Some(free) = self.sequences.iter().position(|s| matches!(s.holder, Holder::Free)) {
            return Placement::Start { seq: seq_id(free), evict: None, donor };
        }
        let oldest_resident = self
            .sequences
            .iter()
            .enumerate()
            .filter(|&(index, _)| donor.is_none_or(|(d, _)| seq_id(index) != d))
            .filter_map(|(index, s)| match s.holder {
                Holder::Resident { finished } => Some((finished, index)),
                _ => None,
            })
            .min();
        if let Some((_, index)) = oldest_resident {
            return Placement::Start { seq: seq_id(index), evict: Some(seq_id(index)), donor };
        }
        match donor {
            // The only resident is the donor: the new prompt takes its sequence over.
            Some((seq, shared)) if matches!(self.sequences[index(seq)].holder, Holder::Resident { .. }) => {
                Placement::Start { seq, evict: None, donor: Some((seq, shared)) }
            }
            _ => Placement::Full,
        }
    }

    /// Records that `prompt` starts in `seq` with its first `shared` tokens already in the cache.
    pub fn start(&mut self, seq: SeqId, prompt: &[LlamaToken], prefix_id: &str, shared: usize) {
        let sequence = &mut self.sequences[index(seq)];
        sequence.holder = Holder::Live;
        sequence.prefix_id = prefix_id.to_owned();
        sequence.tokens = prompt.to_vec();
        sequence.decoded = shared;
    }

    /// Records that `count` more of `seq`'s tokens were decoded.
    pub fn decoded(&mut self, seq: SeqId, count: usize) {
        self.sequences[index(seq)].decoded += count;
    }

    /// Records a generated token to be decoded into `seq` next.
    pub fn push(&mut self, seq: SeqId, token: LlamaToken) {
        self.sequences[index(seq)].tokens.push(token);
    }

    /// The tokens of `seq` not yet decoded, and the position of the first.
    pub fn pending(&self, seq: SeqId) -> (&[LlamaToken], usize) {
        let sequence = &self.sequences[index(seq)];
        (&sequence.tokens[sequence.decoded..], sequence.decoded)
    }

    /// `seq`'s generation ended: keep its tokens as a donor when prefixes are shared. Returns
    /// whether its cells must be cleared now.
    pub fn finish(&mut self, seq: SeqId) -> bool {
        if !self.share_prefix {
            self.free(seq);
            return true;
        }
        self.finished += 1;
        let sequence = &mut self.sequences[index(seq)];
        sequence.holder = Holder::Resident { finished: self.finished };
        // Tokens sampled but never decoded are not in the cache.
        sequence.tokens.truncate(sequence.decoded);
        false
    }

    /// `seq` holds nothing any more (its cells are cleared by the caller).
    pub fn free(&mut self, seq: SeqId) {
        let sequence = &mut self.sequences[index(seq)];
        sequence.holder = Holder::Free;
        sequence.tokens.clear();
        sequence.decoded = 0;
    }

    /// The least recently finished resident, to clear when the cache is out of cells.
    pub fn oldest_resident(&self) -> Option<SeqId> {
        let resident = self.sequences.iter().enumerate().filter_map(|(index, s)| match s.holder {
            Holder::Resident { finished } => Some((finished, index)),
            _ => None,
        });
        resident.min().map(|(_, index)| seq_id(index))
    }

    /// The sequence sharing the longest prefix with `prompt` (the same prefix id wins a tie),
    /// and how many tokens to take from it: at least [`MIN_SHARED_TOKENS`], never the whole
    /// prompt, since its last token must be decoded to sample from.
    fn donor(&self, prompt: &[LlamaToken], prefix_id: &str) -> Option<(usize, usize)> {
        if !self.share_prefix {
            return None;
        }
        let limit = prompt.len().saturating_sub(1);
        self.sequences
            .iter()
            .enumerate()
            .filter(|(_, s)| !matches!(s.holder, Holder::Free))
            .map(|(index, s)| {
                let shared = common_prefix(&s.tokens, prompt).min(limit);
                (shared, !prefix_id.is_empty() && s.prefix_id == prefix_id, index)
            })
            .filter(|&(shared, _, _)| shared >= MIN_SHARED_TOKENS)
            .max_by_key(|&(shared, same_answer, index)| (shared, same_answer, std::cmp::Reverse(index)))
            .map(|(shared, _, index)| (index, shared))
    }
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn seq_id(index: usize) -> SeqId {
    SeqId::try_from(index).unwrap_or(SeqId::MAX)
}

fn index(seq: SeqId) -> usize {
    usize::try_from(seq).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(shared: i32, own: &[i32]) -> Vec<LlamaToken> {
        (0..shared).chain(own.iter().copied()).map(LlamaToken).collect()
    }

    fn decode_all(sequences: &mut Sequences, seq: SeqId) {
        let pending = sequences.pending(seq).0.len();
        sequences.decoded(seq, pending);
    }

    #[test]
    fn a_prompt_with_nothing_in_common_starts_in_a_free_sequence() {
        let mut sequences = Sequences::new(2, true);
        let first = tokens(40, &[-1]);
        assert_eq!(sequences.place(&first, "a"), Placement::Start { seq: 0, evict: None, donor: None });
        sequences.start(0, &first, "a", 0);
        let other: Vec<_> = (100..150).map(LlamaToken).collect();
        assert_eq!(sequences.place(&other, "b"), Placement::Start { seq: 1, evict: None, donor: None });
    }

    #[test]
    fn a_shared_prefix_waits_for_its_prefill_then_is_copied() {
        let mut sequences = Sequences::new(3, true);
        let first = tokens(40, &[1000, 1001]);
        sequences.start(0, &first, "a", 0);
        let second = tokens(40, &[2000]);
        assert_eq!(sequences.place(&second, "a"), Placement::WaitForDonor);
        decode_all(&mut sequences, 0);
        assert_eq!(
            sequences.place(&second, "a"),
            Placement::Start { seq: 1, evict: None, donor: Some((0, 40)) }
        );
        sequences.start(1, &second, "a", 40);
        assert_eq!(sequences.pending(1), (&second[40..], 40));
    }

    #[test]
    fn the_last_prompt_token_is_always_decoded_and_short_prefixes_are_not_shared() {
        let mut sequences = Sequences::new(2, true);
        let prompt = tokens(40, &[]);
        sequences.start(0, &prompt, "a", 40);
        let Placement::Start { donor, .. } = sequences.place(&prompt, "a") else { panic!() };
        assert_eq!(donor, Some((0, 39)));
        let short = tokens(MIN_SHARED_TOKENS as i32 - 1, &[5000, 5001]);
        assert_eq!(sequences.place(&short, "a"), Placement::Start { seq: 1, evict: None, donor: None });
    }

    #[test]
    fn the_same_answer_wins_a_tie_and_the_longer_prefix_wins_over_it() {
        let mut sequences = Sequences::new(3, true);
        sequences.start(0, &tokens(40, &[7]), "other", 41);
        sequences.start(1, &tokens(40, &[8]), "mine", 41);
        let prompt = tokens(40, &[9, 9]);
        let Placement::Start { donor, .. } = sequences.place(&prompt, "mine") else { panic!() };
        assert_eq!(donor, Some((1, 40)));
        let prompt = tokens(40, &[7, 9]);
        let Placement::Start { donor, .. } = sequences.place(&prompt, "mine") else { panic!() };
        assert_eq!(donor, Some((0, 41)));
    }

    #[test]
    fn finished_sequences_stay_as_donors_and_the_oldest_is_evicted_first() {
        let mut sequences = Sequences::new(2, true);
        sequences.start(0, &tokens(40, &[1]), "a", 41);
        sequences.start(1, &tokens(0, &[500; 40]), "b", 40);
        assert!(!sequences.finish(0));
        assert!(!sequences.finish(1));
        assert_eq!(sequences.oldest_resident(), Some(0));
        // Sharing with 1, so 0 (older, unrelated) gives its id.
        let prompt = tokens(0, &[500; 41]);
        assert_eq!(
            sequences.place(&prompt, "c"),
            Placement::Start { seq: 0, evict: Some(0), donor: Some((1, 40)) }
        );
        sequences.free(0);
        sequences.start(0, &prompt, "c", 40);
        // Only the donor is left to give: the prompt takes it over.
        let prompt = tokens(40, &[3, 4]);
        sequences.finish(0);
        assert_eq!(sequences.place(&prompt, "a"), Placement::Start { seq: 1, evict: Some(1), donor: None });
    }

    #[test]
    fn a_lone_resident_donor_is_taken_over_and_live_sequences_are_never_evicted() {
        let mut sequences = Sequences::new(1, true);
        let prompt = tokens(40, &[1, 2]);
        sequences.start(0, &prompt, "a", 0);
        decode_all(&mut sequences, 0);
        assert_eq!(sequences.place(&tokens(40, &[3]), "a"), Placement::Full);
        sequences.push(0, LlamaToken(77));
        assert!(!sequences.finish(0));
        assert_eq!(
            sequences.place(&tokens(40, &[1, 2, 77, 5]), "a"),
            Placement::Start { seq: 0, evict: None, donor: Some((0, 42)) },
            "the sampled token 77 was never decoded, so it is not shared"
        );
    }

    #[test]
    fn without_prefix_sharing_nothing_is_kept_or_copied() {
        let mut sequences = Sequences::new(2, false);
        let prompt = tokens(40, &[1]);
        sequences.start(0, &prompt, "a", 0);
        decode_all(&mut sequences, 0);
        assert_eq!(sequences.place(&prompt, "a"), Placement::Start { seq: 1, evict: None, donor: None });
        assert!(sequences.finish(0));
        assert_eq!(sequences.oldest_resident(), None);
    }
}
