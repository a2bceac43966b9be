//! What one call costs at a model's list price, by token kind.

use serde::{Deserialize, Serialize};

use crate::money::{PicoUsd, PricePerMtok};

/// A model's price and the facts routing needs about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    /// Uncached input.
    pub input: PricePerMtok,
    /// Output (reasoning included unless `reasoning` says otherwise).
    pub output: PricePerMtok,
    /// Input read from the provider's prompt cache; `None` means billed as input.
    pub cached_input: Option<PricePerMtok>,
    /// Input written to the prompt cache; `None` means billed as input.
    pub cache_write: Option<PricePerMtok>,
    /// Reasoning tokens, when billed apart from output; `None` means billed as output.
    pub reasoning: Option<PricePerMtok>,
}

/// Token counts by kind. `output` includes `reasoning`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Uncached input.
    pub input: u64,
    /// All output, reasoning included.
    pub output: u64,
    /// Input read from the prompt cache.
    pub cached_input: u64,
    /// Input written to the prompt cache.
    pub cache_write: u64,
    /// Of `output`, reasoning tokens.
    pub reasoning: u64,
}

impl ModelPrice {
    /// The exact cost of `tokens`.
    pub fn cost(&self, tokens: &Tokens) -> PicoUsd {
        let reasoning = tokens.reasoning.min(tokens.output);
        self.input.cost(tokens.input)
            + self
                .cached_input
                .unwrap_or(self.input)
                .cost(tokens.cached_input)
            + self
                .cache_write
                .unwrap_or(self.input)
                .cost(tokens.cache_write)
            + self.output.cost(tokens.output.saturating_sub(reasoning))
            + self.reasoning.unwrap_or(self.output).cost(reasoning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PricePerMtok {
        PricePerMtok::parse(s).unwrap()
    }

    #[test]
    fn costs_at_the_type_limits_saturate_instead_of_wrapping() {
        let dear = ModelPrice {
            input: PricePerMtok(i64::MAX),
            output: PricePerMtok(i64::MAX),
            cached_input: None,
            cache_write: None,
            reasoning: None,
        };
        let all = Tokens {
            input: u64::MAX,
            output: u64::MAX,
            cached_input: u64::MAX,
            cache_write: u64::MAX,
            reasoning: u64::MAX,
        };
        let cost = dear.cost(&all);
        assert_eq!(cost, PicoUsd(i128::MAX), "saturated, not wrapped");
        assert_eq!(cost.to_i64(), i64::MAX);
        assert!(dear.cost(&Tokens::default()) == PicoUsd::ZERO);
        assert_eq!(PicoUsd(i128::MIN) - PicoUsd(1), PicoUsd(i128::MIN));
        assert_eq!(
            [PicoUsd(i128::MAX), PicoUsd(1)]
                .into_iter()
                .sum::<PicoUsd>(),
            PicoUsd(i128::MAX)
        );
    }

    #[test]
    fn anthropic_cache_reads_and_writes_match_a_hand_computation() {
        // Claude Sonnet 4.5: $3 in, $15 out, $0.30 cache read, $3.75 cache write.
        let sonnet = ModelPrice {
            input: p("3"),
            output: p("15"),
            cached_input: Some(p("0.30")),
            cache_write: Some(p("3.75")),
            reasoning: None,
        };
        let t = Tokens {
            input: 1_200,
            output: 350,
            cached_input: 10_000,
            cache_write: 2_048,
            reasoning: 0,
        };
        // 1200×3 + 10000×0.30 + 2048×3.75 + 350×15 = 3600 + 3000 + 7680 + 5250 = 19530 µUSD·tok/Mtok
        // = $0.019530.
        assert_eq!(sonnet.cost(&t).to_string(), "0.019530000000");
    }

    #[test]
    fn reasoning_tokens_bill_as_output_unless_priced_apart() {
        // o4-mini: $1.10 in, $0.275 cached, $4.40 out; 800 of 1000 output tokens are reasoning.
        let o4 = ModelPrice {
            input: p("1.10"),
            output: p("4.40"),
            cached_input: Some(p("0.275")),
            cache_write: None,
            reasoning: None,
        };
        let t = Tokens {
            input: 500,
            output: 1_000,
            cached_input: 1_000,
            cache_write: 0,
            reasoning: 800,
        };
        // 500×1.10 + 1000×0.275 + 1000×4.40 = 550 + 275 + 4400 = 5225 → $0.005225.
        assert_eq!(o4.cost(&t).to_string(), "0.005225000000");
        let apart = ModelPrice {
            reasoning: Some(p("2.00")),
            ..o4
        };
        // 550 + 275 + 200×4.40 + 800×2.00 = 550 + 275 + 880 + 1600 = 3305 → $0.003305.
        assert_eq!(apart.cost(&t).to_string(), "0.003305000000");
    }
}
