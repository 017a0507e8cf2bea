//! The simulated server's prefix cache (vLLM's automatic prefix caching, llama.cpp's
//! `cache_prompt`): the KV of prompt prefixes it has prefilled stays in spare memory, in
//! blocks of [`BLOCK_TOKENS`] tokens, least recently used first out; a new prompt prefills
//! only what follows its longest cached prefix.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Tokens per cached block (vLLM's default block size).
pub const BLOCK_TOKENS: usize = 16;

/// The prefix of a prompt as chained block hashes: block `i`'s hash covers every token up to
/// the end of block `i`, so equal hashes mean equal prefixes. A last partial block is not
/// cached, as in vLLM.
pub fn prefix_blocks<T: Hash>(tokens: &[T]) -> Vec<u64> {
    let mut hasher = DefaultHasher::new();
    tokens
        .chunks_exact(BLOCK_TOKENS)
        .map(|block| {
            block.hash(&mut hasher);
            hasher.finish()
        })
        .collect()
}

/// Cached blocks within a capacity, least recently used evicted first.
#[derive(Debug)]
pub struct PrefixCache {
    capacity_blocks: usize,
    /// Block hash → the use counter at its last use.
    blocks: HashMap<u64, u64>,
    /// (use counter, block) in the order of use; stale entries are skipped.
    order: VecDeque<(u64, u64)>,
    uses: u64,
}

impl PrefixCache {
    /// A cache of `capacity_tokens` tokens (0: no cache).
    pub fn new(capacity_tokens: u64) -> Self {
        let capacity_blocks = usize::try_from(capacity_tokens).unwrap_or(usize::MAX) / BLOCK_TOKENS;
        Self { capacity_blocks, blocks: HashMap::new(), order: VecDeque::new(), uses: 0 }
    }

    /// Admits a prompt with `prefix` (its [`prefix_blocks`]): returns how many of its tokens
    /// were cached, and keeps all its blocks as the most recently used.
    pub fn admit(&mut self, prefix: &[u64]) -> u64 {
        if self.capacity_blocks == 0 {
            return 0;
        }
        let cached = prefix.iter().take_while(|block| self.blocks.contains_key(block)).count();
        for &block in prefix {
            self.uses += 1;
            self.blocks.insert(block, self.uses);
            self.order.push_back((self.uses, block));
        }
        self.evict();
        (cached * BLOCK_TOKENS) as u64
    }

    fn evict(&mut self) {
        while self.blocks.len() > self.capacity_blocks {
            let Some((used, block)) = self.order.pop_front() else { return };
            if self.blocks.get(&block) == Some(&used) {
                self.blocks.remove(&block);
            }
        }
        // Stale entries (blocks used again later) are dropped once they outnumber live ones.
        if self.order.len() > 2 * self.blocks.len() + BLOCK_TOKENS {
            let blocks = &self.blocks;
            self.order.retain(|(used, block)| blocks.get(block) == Some(used));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    fn words(prefix: &str, count: usize) -> String {
        (0..count).map(|i| format!("{prefix}{i} ")).collect()
    }

    #[test]
    fn a_shared_prefix_is_prefilled_once_and_only_whole_blocks_count() {
        let mut cache = PrefixCache::new(10_000);
        let shared = words("outline", 40);
        let first = tokens(&format!("{shared} expand point one"));
        let second = tokens(&format!("{shared} expand point two"));
        assert_eq!(cache.admit(&prefix_blocks(&first)), 0, "a cold cache");
        // 40 shared tokens are 2 whole blocks (32 tokens); the third block differs.
        assert_eq!(cache.admit(&prefix_blocks(&second)), 32);
        assert_eq!(cache.admit(&prefix_blocks(&second)), 32, "a partial last block is never cached");
    }

    #[test]
    fn equal_blocks_after_a_different_start_are_not_a_hit() {
        let mut cache = PrefixCache::new(10_000);
        let tail = words("same", 32);
        cache.admit(&prefix_blocks(&tokens(&format!("{} {tail}", words("a", 16)))));
        let other = tokens(&format!("{} {tail}", words("b", 16)));
        assert_eq!(cache.admit(&prefix_blocks(&other)), 0, "block hashes cover the whole prefix");
    }

    #[test]
    fn the_least_recently_used_prefix_is_evicted_past_the_capacity() {
        let mut cache = PrefixCache::new(64); // 4 blocks
        let a = prefix_blocks(&tokens(&words("a", 32)));
        let b = prefix_blocks(&tokens(&words("b", 32)));
        let c = prefix_blocks(&tokens(&words("c", 32)));
        cache.admit(&a);
        cache.admit(&b);
        assert_eq!(cache.admit(&a), 32, "both fit");
        cache.admit(&c); // evicts b, the least recently used
        assert_eq!(cache.admit(&a), 32);
        assert_eq!(cache.admit(&b), 0, "b was evicted");
        assert_eq!(PrefixCache::new(0).admit(&a), 0, "no capacity, no cache");
    }
}
