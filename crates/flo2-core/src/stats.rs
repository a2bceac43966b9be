//! The statistics experiments report: confidence intervals that stay valid however often
//! anyone looks at them, a sample-ratio-mismatch test and a correlation. Scores, not money:
//! floats are right here (amounts of money stay integers everywhere).
//!
//! **Anytime-valid intervals.** A fixed-sample 95 % interval, looked at after every new sample,
//! excludes the truth far more often than 5 % of the time: peeking until "significant" finds a
//! winner where there is none. An experiment's results page is looked at whenever anyone likes,
//! so each arm's mean gets a *confidence sequence* instead: intervals that hold at every sample
//! count at once with probability 95 %. flo2 uses the two-sided normal-mixture boundary (Robbins
//! 1970; Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric, nonasymptotic
//! confidence sequences", Annals of Statistics 2021): for observations bounded in `[lo, hi]`,
//! which are sub-Gaussian with variance proxy `(hi - lo)² / 4` (Hoeffding), after `n` samples
//! with intrinsic time `v = n (hi - lo)² / 4`, the sum of deviations from the true mean stays
//! within `sqrt((v + ρ) ln((v + ρ) / (ρ α²)))` for all `n` with probability `1 - α`. `ρ` sets
//! where the sequence is tightest; flo2 tunes it for 200 samples. The price of validity at every
//! look is a somewhat wider interval than a fixed-sample one at any single look.

/// Where a confidence sequence is tuned to be tightest, in samples.
const TUNED_FOR_SAMPLES: f64 = 200.0;

/// A running mean of observations bounded in `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundedMean {
    lo: f64,
    hi: f64,
    n: u64,
    sum: f64,
}

/// An interval around an estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The estimate (the observed mean).
    pub estimate: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Interval {
    /// Half the interval's width.
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }

    /// Whether the two intervals share no point.
    pub fn disjoint(&self, other: &Interval) -> bool {
        self.low > other.high || other.low > self.high
    }
}

impl BoundedMean {
    /// An empty mean of observations in `[lo, hi]` (`lo < hi`).
    pub fn new(lo: f64, hi: f64) -> Self {
        Self {
            lo,
            hi,
            n: 0,
            sum: 0.0,
        }
    }

    /// Adds one observation, clamped into the bounds.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x.clamp(self.lo, self.hi);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The observed mean (`None` before the first observation).
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The confidence sequence's interval at level `1 - alpha`, clipped to the bounds; `None`
    /// before the first observation.
    pub fn interval(&self, alpha: f64) -> Option<Interval> {
        let mean = self.mean()?;
        let half = half_width(self.n, self.hi - self.lo, alpha);
        Some(Interval {
            estimate: mean,
            low: (mean - half).max(self.lo),
            high: (mean + half).min(self.hi),
        })
    }
}

/// The half-width of the normal-mixture confidence sequence after `n` observations of range
/// `range`, at level `1 - alpha`.
pub fn half_width(n: u64, range: f64, alpha: f64) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    let proxy = range * range / 4.0;
    let v = n as f64 * proxy;
    let rho = mixture_rho(TUNED_FOR_SAMPLES * proxy, alpha);
    let boundary = ((v + rho) * ((v + rho) / (rho * alpha * alpha)).ln()).sqrt();
    boundary / n as f64
}

/// The mixture parameter that makes the boundary tightest near intrinsic time `v` (Howard et
/// al. 2021, section 3.5).
fn mixture_rho(v: f64, alpha: f64) -> f64 {
    let l = 2.0 * (1.0 / alpha).ln();
    v / (l + (1.0 + l).ln())
}

/// The fewest observations per arm at which two arms' intervals, each of half-width
/// [`half_width`] at `alpha`, would separate means `gap` apart: how long an experiment still
/// has to run when it cannot yet tell its arms apart. `None` when no number of samples up to
/// ten million would (a gap of 0).
pub fn samples_to_separate(gap: f64, range: f64, alpha: f64) -> Option<u64> {
    let gap = gap.abs();
    if gap <= 0.0 || !gap.is_finite() {
        return None;
    }
    let separates = |n: u64| 2.0 * half_width(n, range, alpha) < gap;
    let (mut lo, mut hi) = (1u64, 1u64);
    while !separates(hi) {
        lo = hi;
        hi = hi.checked_mul(2)?;
        if hi > 10_000_000 {
            return None;
        }
    }
    // The half-width shrinks as n grows: bisect for the first n that separates.
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if separates(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// The p-value of a chi-square goodness-of-fit test of `observed` counts against `expected`
/// shares (any positive scale): the sample-ratio-mismatch check. `None` with fewer than two
/// categories, no observations, or a zero share.
pub fn chi_square_p(observed: &[u64], shares: &[f64]) -> Option<f64> {
    if observed.len() != shares.len() || observed.len() < 2 {
        return None;
    }
    let total: u64 = observed.iter().sum();
    let share_sum: f64 = shares.iter().sum();
    if total == 0 || shares.iter().any(|s| *s <= 0.0) || share_sum <= 0.0 {
        return None;
    }
    let statistic: f64 = observed
        .iter()
        .zip(shares)
        .map(|(o, s)| {
            let e = total as f64 * s / share_sum;
            (*o as f64 - e).powi(2) / e
        })
        .sum();
    let dof = (observed.len() - 1) as f64;
    Some(1.0 - lower_regularized_gamma(dof / 2.0, statistic / 2.0))
}

/// Pearson's correlation of `(x, y)` pairs (`None` under three pairs or with no variance).
pub fn correlation(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let n = pairs.len() as f64;
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// P(a, x), the lower regularized incomplete gamma function: the chi-square CDF with `2a`
/// degrees of freedom at `2x`. A series below `a + 1`, a continued fraction above (the usual
/// split, each converging fast on its side).
fn lower_regularized_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let ln_prefactor = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut k) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            k += 1.0;
            term *= x / k;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (sum * ln_prefactor.exp()).clamp(0.0, 1.0)
    } else {
        // Lentz's method for the continued fraction of Q(a, x).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (1.0 - ln_prefactor.exp() * h).clamp(0.0, 1.0)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients: about 15 digits).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn gamma_and_chi_square_match_known_values() {
        assert!(close(ln_gamma(1.0), 0.0, 1e-12));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
        // Chi-square, 1 degree of freedom: P(X > 3.841) = 0.05; P(X > 10.828) = 0.001.
        let p = |stat: f64, dof: f64| 1.0 - lower_regularized_gamma(dof / 2.0, stat / 2.0);
        assert!(close(p(3.841_459, 1.0), 0.05, 1e-6));
        assert!(close(p(10.827_566, 1.0), 0.001, 1e-7));
        // 3 degrees of freedom: P(X > 7.815) = 0.05 (the series side and the fraction side).
        assert!(close(p(7.814_728, 3.0), 0.05, 1e-6));
        assert!(close(p(1.0, 3.0), 0.801_251_8, 1e-6));
    }

    #[test]
    fn a_fair_split_passes_and_a_skewed_one_is_flagged() {
        let fair = chi_square_p(&[5_030, 4_970], &[50.0, 50.0]).unwrap();
        assert!(fair > 0.5, "{fair}");
        let skewed = chi_square_p(&[5_300, 4_700], &[50.0, 50.0]).unwrap();
        assert!(skewed < 0.001, "{skewed}");
        let three = chi_square_p(&[200, 300, 500], &[20.0, 30.0, 50.0]).unwrap();
        assert!(close(three, 1.0, 1e-9), "{three}");
        assert_eq!(chi_square_p(&[1], &[100.0]), None);
        assert_eq!(chi_square_p(&[0, 0], &[50.0, 50.0]), None);
    }

    #[test]
    fn intervals_shrink_with_samples_and_stay_in_bounds() {
        let mut m = BoundedMean::new(1.0, 10.0);
        assert_eq!(m.interval(0.05), None);
        m.push(10.0);
        let one = m.interval(0.05).unwrap();
        assert_eq!((one.low, one.high), (1.0, 10.0), "one sample says little");
        for _ in 0..199 {
            m.push(7.0);
            m.push(9.0);
        }
        let many = m.interval(0.05).unwrap();
        assert!(many.half_width() < 0.8, "{many:?}");
        assert!(many.low < many.estimate && many.estimate < many.high);
        let more = half_width(4_000, 9.0, 0.05);
        assert!(more < half_width(400, 9.0, 0.05));
        m.push(100.0);
        assert!(m.mean().unwrap() <= 10.0, "clamped into the bounds");
    }

    /// Looked at after every sample, a fixed-sample interval misses the truth in far more
    /// than 5 % of runs; the confidence sequence misses it in fewer than 5 %.
    #[test]
    fn the_sequence_holds_at_every_look() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (runs, looks, truth) = (400, 500, 0.5);
        let (mut sequence_missed, mut fixed_missed) = (0, 0);
        for _ in 0..runs {
            let mut m = BoundedMean::new(0.0, 1.0);
            let (mut s_miss, mut f_miss) = (false, false);
            let mut sum_sq = 0.0;
            for n in 1..=looks {
                let x = f64::from(u8::from(uniform() < truth));
                sum_sq += x * x;
                m.push(x);
                let i = m.interval(0.05).unwrap();
                s_miss |= truth < i.low || truth > i.high;
                if n >= 10 {
                    let mean = m.mean().unwrap();
                    let var = (sum_sq / n as f64 - mean * mean).max(1e-12);
                    let half = 1.96 * (var / n as f64).sqrt();
                    f_miss |= (mean - truth).abs() > half;
                }
            }
            sequence_missed += usize::from(s_miss);
            fixed_missed += usize::from(f_miss);
        }
        assert!(sequence_missed * 20 < runs, "{sequence_missed} of {runs}");
        assert!(
            fixed_missed * 5 > runs,
            "peeking breaks a fixed interval: {fixed_missed}"
        );
    }

    #[test]
    fn samples_to_separate_finds_the_first_count_that_does() {
        let n = samples_to_separate(2.0, 9.0, 0.05).unwrap();
        assert!(2.0 * half_width(n, 9.0, 0.05) < 2.0);
        assert!(2.0 * half_width(n - 1, 9.0, 0.05) >= 2.0);
        assert_eq!(samples_to_separate(0.0, 9.0, 0.05), None);
    }

    #[test]
    fn correlation_of_lines_and_noise() {
        let line: Vec<_> = (0..10)
            .map(|i| (f64::from(i), 2.0 * f64::from(i) + 1.0))
            .collect();
        assert!(close(correlation(&line).unwrap(), 1.0, 1e-12));
        let down: Vec<_> = (0..10).map(|i| (f64::from(i), -f64::from(i))).collect();
        assert!(close(correlation(&down).unwrap(), -1.0, 1e-12));
        assert_eq!(correlation(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]), None);
    }
}
