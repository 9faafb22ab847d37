//! Foresight: what a request will likely cost, next to the worst case reserved for it.
//!
//! The worst case stays the bound the caps use (every prompt byte counted as a token, the whole
//! `max_tokens` answered). The likely cost learns from the model's own past requests in the
//! ledger: the prompt's tokens are its bytes at the bytes-per-token ratio those requests showed
//! ([`DEFAULT_BYTES_PER_TOKEN`] without any), the answer's tokens the median of their answers
//! (`max_tokens / 4` without any), both at the model's list price. Pure: the ledger query is
//! [`crate::budget::ledger::Ledger::samples`].

use super::money::{Price, Usd};

/// How many of a model's latest settled requests the estimate learns from: enough for a
/// steady median, few enough that the query stays a short index walk and a change of habits
/// shows within a day or two.
pub const SAMPLE_ROWS: u32 = 200;

/// Bytes per prompt token without samples: about right for English and code with the common
/// tokenizers.
pub const DEFAULT_BYTES_PER_TOKEN: u64 = 4;

/// What one past request of the model showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub prompt_bytes: Option<u64>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
}

/// The likely cost of a request and how it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Likely {
    pub cost: Usd,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// How many past requests it learned from (0: the defaults).
    pub learned_from: usize,
}

/// The prompt's likely tokens: its bytes at the ratio the samples that have both figures
/// showed (their bytes over their tokens, summed: a long prompt weighs more than a short one),
/// rounded up.
pub fn prompt_tokens(prompt_bytes: u64, samples: &[Sample]) -> u64 {
    let (bytes, tokens) = samples
        .iter()
        .filter_map(|s| match (s.prompt_bytes, s.tokens_in) {
            (Some(b), Some(t)) if b > 0 && t > 0 => Some((u128::from(b), u128::from(t))),
            _ => None,
        })
        .fold((0u128, 0u128), |(b, t), (sb, st)| (b + sb, t + st));
    let (bytes, tokens) = if bytes == 0 {
        (u128::from(DEFAULT_BYTES_PER_TOKEN), 1)
    } else {
        (bytes, tokens)
    };
    let want = u128::from(prompt_bytes) * tokens;
    u64::try_from(want.div_ceil(bytes)).unwrap_or(u64::MAX)
}

/// The answer's likely tokens: the median of the samples' answers (the upper one of an even
/// count), never above `max_tokens`; `max_tokens / 4` without any.
pub fn completion_tokens(max_tokens: u32, samples: &[Sample]) -> u64 {
    let mut outs: Vec<u64> = samples.iter().filter_map(|s| s.tokens_out).collect();
    if outs.is_empty() {
        return u64::from(max_tokens / 4);
    }
    outs.sort_unstable();
    outs[outs.len() / 2].min(u64::from(max_tokens))
}

/// The likely cost at `price` (the list price), never above `worst` (the reservation).
pub fn likely(
    price: &Price,
    prompt_bytes: u64,
    max_tokens: u32,
    samples: &[Sample],
    worst: Usd,
) -> Likely {
    let prompt_tokens = prompt_tokens(prompt_bytes, samples);
    let completion_tokens = completion_tokens(max_tokens, samples);
    let cost = price
        .worst_case(prompt_tokens, completion_tokens)
        .unwrap_or(worst)
        .min(worst);
    Likely {
        cost,
        prompt_tokens,
        completion_tokens,
        learned_from: samples.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Usd {
        Usd::parse_decimal(s).unwrap()
    }

    fn sample(bytes: u64, tin: u64, tout: u64) -> Sample {
        Sample {
            prompt_bytes: Some(bytes),
            tokens_in: Some(tin),
            tokens_out: Some(tout),
        }
    }

    const SONNET: Price = Price {
        prompt: Usd(3_000_000),
        completion: Usd(15_000_000),
        request: Usd(0),
    };

    #[test]
    fn without_samples_four_bytes_a_token_and_a_quarter_of_max_tokens() {
        assert_eq!(prompt_tokens(4000, &[]), 1000);
        assert_eq!(prompt_tokens(4001, &[]), 1001, "rounded up");
        assert_eq!(completion_tokens(4096, &[]), 1024);
        let l = likely(&SONNET, 4000, 4096, &[], usd("1"));
        // 1000 × $3/M + 1024 × $15/M.
        assert_eq!(l.cost, usd("0.01836"));
        assert_eq!(l.learned_from, 0);
    }

    #[test]
    fn the_ratio_and_the_median_are_learned() {
        // 3 bytes a token overall (weighted by size), answers of 100, 300, 900 tokens.
        let h = [
            sample(3000, 1000, 300),
            sample(600, 200, 100),
            sample(30, 10, 900),
        ];
        assert_eq!(prompt_tokens(9000, &h), 3000);
        assert_eq!(completion_tokens(4096, &h), 300);
        // An even count takes the upper middle; never above max_tokens.
        let h4 = [h[0], h[1], h[2], sample(3, 1, 2000)];
        assert_eq!(completion_tokens(4096, &h4), 900);
        assert_eq!(completion_tokens(500, &h4), 500);
        let l = likely(&SONNET, 9000, 4096, &h, usd("1"));
        assert_eq!(l.cost, usd("0.0135"));
        assert_eq!((l.prompt_tokens, l.completion_tokens), (3000, 300));
    }

    #[test]
    fn rows_missing_a_figure_teach_only_what_they_have() {
        let h = [
            // Before v3: no prompt_bytes, but an answer length.
            Sample {
                prompt_bytes: None,
                tokens_in: Some(500),
                tokens_out: Some(40),
            },
            // Zero tokens in (an odd server) must not divide by zero.
            sample(100, 0, 60),
            sample(2000, 1000, 80),
        ];
        assert_eq!(
            prompt_tokens(1000, &h),
            500,
            "2 bytes a token from the one full row"
        );
        assert_eq!(completion_tokens(4096, &h), 60);
        let only_old = [Sample {
            prompt_bytes: None,
            tokens_in: Some(10),
            tokens_out: None,
        }];
        assert_eq!(prompt_tokens(400, &only_old), 100, "the default ratio");
        assert_eq!(completion_tokens(64, &only_old), 16);
    }

    #[test]
    fn likely_never_exceeds_the_worst_case() {
        let h = [sample(1, 100, 100_000)];
        let worst = usd("0.001");
        assert_eq!(likely(&SONNET, 10_000, 4096, &h, worst).cost, worst);
        assert_eq!(
            likely(&Price::default(), 10_000, 4096, &h, Usd::ZERO).cost,
            Usd::ZERO
        );
    }

    /// A small deterministic generator (xorshift64*), so the simulation needs no crate and
    /// gives the same month on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn uniform(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// A standard normal (Box-Muller).
        fn normal(&mut self) -> f64 {
            let u = self.uniform().max(1e-12);
            let v = self.uniform();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }

        fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
            median * (sigma * self.normal()).exp()
        }
    }

    /// How often the likely cost lands within a factor of two of the real one over a simulated
    /// month of one model's requests (30 days × 25 edits), each estimated from the requests
    /// before it. Prompts: log-normal bytes (median 6 KB: a selection and its context), at
    /// 3.2–4.0 bytes a token; answers: log-normal tokens (median 350, σ 0.7), either
    /// independent of the prompt or growing with it. Prices: Sonnet's list price. Returns the
    /// fraction, and the fraction the defaults alone (no samples) reach.
    fn simulate(seed: u64, correlated: bool) -> (f64, f64) {
        let mut rng = Rng(seed);
        let max_tokens = 4096u32;
        let mut samples: Vec<Sample> = Vec::new();
        let (mut within, mut within_default, mut n) = (0u32, 0u32, 0u32);
        for _ in 0..30 * 25 {
            let bytes = rng.lognormal(6000.0, 0.8).clamp(300.0, 150_000.0) as u64;
            let ratio = 3.2 + 0.8 * rng.uniform();
            let tokens_in = (bytes as f64 / ratio).ceil() as u64;
            let median_out = if correlated {
                350.0 * (bytes as f64 / 6000.0).sqrt()
            } else {
                350.0
            };
            let tokens_out = (rng.lognormal(median_out, 0.7).round() as u64).clamp(1, 4096);
            let real = SONNET.worst_case(tokens_in, tokens_out).unwrap();
            let worst = SONNET.worst_case(bytes, u64::from(max_tokens)).unwrap();
            let recent: Vec<Sample> = samples
                .iter()
                .rev()
                .take(SAMPLE_ROWS as usize)
                .copied()
                .collect();
            let close = |l: Usd| l.picos() * 2 >= real.picos() && l.picos() <= real.picos() * 2;
            within += u32::from(close(
                likely(&SONNET, bytes, max_tokens, &recent, worst).cost,
            ));
            within_default += u32::from(close(likely(&SONNET, bytes, max_tokens, &[], worst).cost));
            n += 1;
            samples.push(sample(bytes, tokens_in, tokens_out));
        }
        (
            f64::from(within) / f64::from(n),
            f64::from(within_default) / f64::from(n),
        )
    }

    /// Run with `--nocapture` to see the figures.
    #[test]
    fn a_simulated_month_lands_within_a_factor_of_two_most_of_the_time() {
        for correlated in [false, true] {
            let runs: Vec<(f64, f64)> = (1..=5)
                .map(|seed| simulate(seed * 7919, correlated))
                .collect();
            let mean = runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64;
            let mean_default = runs.iter().map(|r| r.1).sum::<f64>() / runs.len() as f64;
            println!(
                "answers {}: likely within ×2 of the real cost in {:.1}% of requests (defaults alone: {:.1}%)",
                if correlated { "growing with the prompt" } else { "independent of the prompt" },
                mean * 100.0,
                mean_default * 100.0
            );
            assert!(mean >= 0.8, "{runs:?}");
        }
    }
}
