//! `[daemon] sampling_rate`: keep or drop whole traces by a hash of the
//! trace id, so every span of a trace (whichever request or replica it
//! arrives on) gets the same answer.

use detector_api::TraceId;

/// A seed of its own, so the kept traces do not line up with the shard a
/// trace hashes to (`shard_of` uses the unseeded hash).
const SEED: u64 = 0x7065_7266_2d73_616d;

/// Decides which traces are analyzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// Traces whose hash is below this are kept; `None` keeps all.
    below: Option<u64>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl Sampler {
    /// Keeps about `rate` (0 to 1) of the traces.
    pub fn new(rate: f64) -> Self {
        let below = if rate >= 1.0 {
            None
        } else {
            // Rounded down; rates are at most 1.0 so this stays below 2^64.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let t = (rate.max(0.0) * u64::MAX as f64) as u64;
            Some(t)
        };
        Self { below }
    }

    /// True when `trace_id`'s trace is analyzed.
    pub fn keeps(&self, trace_id: &TraceId) -> bool {
        match self.below {
            None => true,
            Some(below) => xxhash_rust::xxh3::xxh3_64_with_seed(&trace_id.0, SEED) < below,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TraceId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b[8..].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        TraceId(b)
    }

    #[test]
    fn rate_one_keeps_every_trace() {
        let s = Sampler::new(1.0);
        assert!((0..10_000).all(|n| s.keeps(&id(n))));
    }

    #[test]
    fn a_rate_keeps_about_that_share_and_always_the_same_traces() {
        let s = Sampler::new(0.25);
        let kept: Vec<u64> = (0..40_000).filter(|&n| s.keeps(&id(n))).collect();
        // 10,000 expected; the binomial standard deviation is about 87.
        assert!((9_500..=10_500).contains(&kept.len()), "{}", kept.len());
        let again: Vec<u64> = (0..40_000).filter(|&n| s.keeps(&id(n))).collect();
        assert_eq!(kept, again);
        // A higher rate keeps a superset: raising it never drops a trace.
        let wider = Sampler::new(0.5);
        assert!(kept.iter().all(|&n| wider.keeps(&id(n))));
    }
}
