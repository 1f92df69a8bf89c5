//! Choosing the next token: greedy, or temperature / top-k / top-p sampling from a seeded
//! per-request generator (so a seeded request gives the same tokens however it is batched),
//! with the log-probabilities OpenAI's `logprobs` reports.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How one request samples.
#[derive(Debug, Clone)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// Nucleus mass, in (0, 1].
    pub top_p: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Seed of the request's generator.
    pub seed: Option<u64>,
    /// How many alternatives to report per token (None = no logprobs).
    pub top_logprobs: Option<usize>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: None,
            top_logprobs: None,
        }
    }
}

/// The chosen token and, when asked, its log-probability and the top alternatives.
#[derive(Debug, Clone)]
pub struct Pick {
    /// Token id.
    pub token: u32,
    /// Its log-probability under the model (before temperature).
    pub logprob: f32,
    /// The most likely tokens with their log-probabilities.
    pub top: Vec<(u32, f32)>,
}

/// A request's sampler.
#[derive(Debug)]
pub struct Sampler {
    rng: StdRng,
}

impl Sampler {
    /// A sampler seeded from `seed`, or from the OS when there is none.
    pub fn new(seed: Option<u64>) -> Sampler {
        Sampler {
            rng: match seed {
                Some(s) => StdRng::seed_from_u64(s),
                None => StdRng::from_os_rng(),
            },
        }
    }

    /// Pick the next token from `logits`.
    pub fn pick(&mut self, logits: &[f32], p: &SamplingParams) -> Pick {
        let token = if p.temperature <= 0.0 {
            argmax(logits)
        } else {
            self.sample(logits, p)
        };
        let (logprob, top) = match p.top_logprobs {
            None => (0.0, Vec::new()),
            Some(k) => {
                let lse = log_sum_exp(logits);
                let mut top: Vec<(u32, f32)> = Vec::new();
                if k > 0 {
                    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
                    let k = k.min(idx.len());
                    idx.select_nth_unstable_by(k - 1, |a, b| {
                        logits[*b as usize].total_cmp(&logits[*a as usize])
                    });
                    idx.truncate(k);
                    idx.sort_by(|a, b| {
                        logits[*b as usize]
                            .total_cmp(&logits[*a as usize])
                            .then(a.cmp(b))
                    });
                    top = idx
                        .into_iter()
                        .map(|i| (i, logits[i as usize] - lse))
                        .collect();
                }
                (logits[token as usize] - lse, top)
            }
        };
        Pick {
            token,
            logprob,
            top,
        }
    }

    fn sample(&mut self, logits: &[f32], p: &SamplingParams) -> u32 {
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u32, l / p.temperature))
            .collect();
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if p.top_k > 0 {
            cand.truncate(p.top_k.max(1));
        }
        let max = cand[0].1;
        let mut probs: Vec<f32> = cand.iter().map(|(_, l)| (l - max).exp()).collect();
        let sum: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|x| *x /= sum);
        if p.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (i, pr) in probs.iter().enumerate() {
                acc += pr;
                if acc >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
            let s: f32 = probs.iter().sum();
            probs.iter_mut().for_each(|x| *x /= s);
        }
        let r: f32 = self.rng.random();
        let mut acc = 0.0;
        for (i, pr) in probs.iter().enumerate() {
            acc += pr;
            if r < acc {
                return cand[i].0;
            }
        }
        cand[probs.len() - 1].0
    }
}

/// Index of the largest logit (the lowest index among equals).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + x.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_seeded_and_logprobs() {
        let logits = [0.0, 3.0, 1.0, 3.0];
        let greedy = SamplingParams {
            temperature: 0.0,
            top_logprobs: Some(2),
            ..Default::default()
        };
        let p = Sampler::new(None).pick(&logits, &greedy);
        assert_eq!(p.token, 1, "ties go to the lower id");
        assert_eq!(p.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 3]);
        let total: f32 = logits
            .iter()
            .map(|l| (l - log_sum_exp(&logits)).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-5);
        let hot = SamplingParams {
            temperature: 1.0,
            top_k: 2,
            seed: Some(7),
            ..Default::default()
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(Some(7));
            (0..20).map(|_| s.pick(&logits, &hot).token).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(Some(7));
            (0..20).map(|_| s.pick(&logits, &hot).token).collect()
        };
        assert_eq!(a, b, "a seed fixes the tokens");
        assert!(
            a.iter().all(|t| *t == 1 || *t == 3),
            "top_k keeps the two best"
        );
        let nucleus = SamplingParams {
            temperature: 1.0,
            top_p: 0.1,
            ..Default::default()
        };
        let mut s = Sampler::new(Some(1));
        assert!((0..20).all(|_| s.pick(&logits, &nucleus).token == 1));
    }
}
