//! Exact money. Prices are integer micro-USD per million tokens; costs are integer pico-USD.
//! Then `tokens × price = cost` exactly: one token at $0.075 per million is 75,000 pico-USD,
//! a million of them exactly $0.075. No floats anywhere.

use std::fmt;

/// A price: micro-USD per million tokens (so `$0.075/Mtok` is `75_000`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PricePerMtok(pub i64);

/// An amount of money in pico-USD (10⁻¹² USD). Sums use `i128`, so no realistic total overflows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PicoUsd(pub i128);

/// A decimal string is not a valid amount.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a plain non-negative decimal number.
    #[error("{0:?} is not a non-negative decimal number such as 0.075")]
    NotDecimal(String),
    /// More fractional digits than the unit holds.
    #[error("{0:?} has more than {1} decimal places")]
    TooPrecise(String, u32),
    /// Too large.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses a non-negative decimal with at most `scale` fractional digits into an integer of
/// 10^-scale units.
fn parse_scaled(text: &str, scale: u32) -> Result<i128, MoneyError> {
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return Err(MoneyError::NotDecimal(text.to_owned()));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() as u32 > scale {
        return Err(MoneyError::TooPrecise(text.to_owned(), scale));
    }
    let too_large = || MoneyError::TooLarge(text.to_owned());
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut frac_units: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| too_large())?
    };
    frac_units *= 10i128.pow(scale - frac.len() as u32);
    whole
        .checked_mul(10i128.pow(scale))
        .and_then(|w| w.checked_add(frac_units))
        .ok_or_else(too_large)
}

/// Formats 10^-scale units as a decimal with exactly `scale` places.
fn format_scaled(units: i128, scale: u32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let unit = 10u128.pow(scale);
    write!(
        f,
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = scale as usize
    )
}

impl PricePerMtok {
    /// Parses a USD-per-million-tokens decimal such as `"0.075"` (at most 6 decimal places).
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let units = parse_scaled(text, 6)?;
        i64::try_from(units)
            .map(Self)
            .map_err(|_| MoneyError::TooLarge(text.to_owned()))
    }

    /// The exact cost of `tokens` tokens at this price (saturating: `u64::MAX` tokens at
    /// `i64::MAX` still fits `i128`, but a negative price from a corrupt row must not wrap).
    pub fn cost(self, tokens: u64) -> PicoUsd {
        PicoUsd(i128::from(tokens).saturating_mul(i128::from(self.0)))
    }
}

impl fmt::Display for PricePerMtok {
    /// USD per million tokens with 6 decimal places, e.g. `0.075000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_scaled(i128::from(self.0), 6, f)
    }
}

impl PicoUsd {
    /// Zero.
    pub const ZERO: PicoUsd = PicoUsd(0);

    /// Parses a USD decimal with at most 12 decimal places.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        parse_scaled(text, 12).map(Self)
    }

    /// Saturating conversion to the `i64` the database stores per row (a single call costing
    /// more than $9.2 million is not a thing).
    pub fn to_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(if self.0 < 0 { i64::MIN } else { i64::MAX })
    }
}

// Token counts come from callers and upstreams, so sums saturate rather than wrap (or panic):
// a cost estimate for a `max_tokens` near 2^64 is "more than anything", never a small number.
impl std::ops::Add for PicoUsd {
    type Output = PicoUsd;
    fn add(self, rhs: PicoUsd) -> PicoUsd {
        PicoUsd(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::Sub for PicoUsd {
    type Output = PicoUsd;
    fn sub(self, rhs: PicoUsd) -> PicoUsd {
        PicoUsd(self.0.saturating_sub(rhs.0))
    }
}

impl std::iter::Sum for PicoUsd {
    fn sum<I: Iterator<Item = PicoUsd>>(iter: I) -> PicoUsd {
        iter.fold(PicoUsd::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for PicoUsd {
    /// USD with 12 decimal places, e.g. `0.075000000000`: exact, so totals add up to the digit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_scaled(self.0, 12, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_one_token_calls_at_0_075_cost_exactly_0_075() {
        let price = PricePerMtok::parse("0.075").unwrap();
        assert_eq!(price, PricePerMtok(75_000));
        let one = price.cost(1);
        assert_eq!(one, PicoUsd(75_000));
        let total: PicoUsd = std::iter::repeat_n(one, 1_000_000).sum();
        assert_eq!(total.to_string(), "0.075000000000");
        assert_eq!(total, PicoUsd::parse("0.075").unwrap());
    }

    #[test]
    fn parsing_is_strict() {
        assert_eq!(PricePerMtok::parse("3").unwrap(), PricePerMtok(3_000_000));
        assert_eq!(PricePerMtok::parse(".5").unwrap(), PricePerMtok(500_000));
        assert_eq!(PricePerMtok::parse("0.0000010").unwrap(), PricePerMtok(1));
        for bad in ["", ".", "-1", "1e3", "abc", "1.2.3", " 1 2", "NaN"] {
            assert!(PricePerMtok::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PricePerMtok::parse("0.0000001"),
            Err(MoneyError::TooPrecise("0.0000001".into(), 6))
        );
        assert!(PricePerMtok::parse("99999999999999999999").is_err());
        assert_eq!(PricePerMtok(18_750).to_string(), "0.018750");
        assert_eq!(PicoUsd(-5).to_string(), "-0.000000000005");
    }
}
