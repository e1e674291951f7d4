//! How one series' value evolves from scrape to scrape, and the seeded randomness behind it.
//!
//! Randomness is *stateless*: every draw is a hash of (seed, round, salt). A series' next value
//! therefore depends only on its own seed and history, never on the order in which the
//! generator visits series, and series that must move together (the buckets, `_sum` and
//! `_count` of one histogram; all counters of a restarting pod) share a seed.

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit permutation.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) determined by `(seed, round, salt)`.
pub(crate) fn unit(seed: u64, round: u64, salt: u64) -> f64 {
    let h = mix(seed ^ mix(round.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ salt));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Sequential seeded generator used while building the series catalog.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(mix(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub(crate) fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// `n` characters from Kubernetes' name-suffix alphabet (no vowels, no look-alikes).
    pub(crate) fn k8s_suffix(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..n).map(|_| *self.pick(ALPHABET) as char).collect()
    }

    pub(crate) fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..n).map(|_| *self.pick(HEX) as char).collect()
    }
}

/// How a raw draw becomes a reported value. Exporters report integers, whole pages, or
/// fixed decimals (`/proc/stat` ticks / 100); keeping that granularity matters because it is
/// what makes real data compress the way it does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Grain {
    /// Full-precision float (cAdvisor CPU seconds, latency sums).
    Exact,
    /// Whole multiples of a unit (1 for counts, 4096 for page-sized byte counts).
    Multiple(f64),
    /// A fixed number of decimals, produced by integer division like the exporters do.
    Decimals(u32),
}

impl Grain {
    /// Rounds a non-negative magnitude to whole grain units; `jitter` in [0,1) makes rounding
    /// probabilistic so that tiny rates (5xx codes, restarts) still tick now and then.
    fn to_units(self, x: f64, jitter: f64) -> f64 {
        match self {
            Grain::Exact => x,
            Grain::Multiple(m) => (x / m + jitter).floor(),
            Grain::Decimals(d) => (x * 10f64.powi(d as i32) + jitter).floor(),
        }
    }

    fn to_value(self, units: f64) -> f64 {
        match self {
            Grain::Exact => units,
            Grain::Multiple(m) => units * m,
            Grain::Decimals(d) => units / 10f64.powi(d as i32),
        }
    }
}

/// The value model of one series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// Never changes (`up`, `kube_pod_info`, `*_total_bytes` of a machine, status phases).
    Constant(f64),
    /// Monotonic counter: each round adds `rate * (1 ± jitter)` (rounded to the grain);
    /// resets with its reset group.
    Counter { rate: f64, jitter: f64, grain: Grain },
    /// Bounded random walk.
    Gauge {
        step: f64,
        min: f64,
        max: f64,
        grain: Grain,
    },
    /// `_bucket{le}` of a histogram whose observations arrive at `rate` per round with a
    /// log-logistic latency distribution of median `scale` seconds. `le = +Inf` is the count.
    Bucket { le: f64, rate: f64, scale: f64 },
    /// `_sum` of the same histogram.
    HistogramSum { rate: f64, scale: f64 },
}

const SALT_RESET: u64 = 0x5E5E;
const SALT_COUNT: u64 = 0xC0C0;
const SALT_SCALE: u64 = 0x5CA1;
const SALT_INIT: u64 = 0x1417;
const SALT_STEP: u64 = 0x57E9;
const SALT_ROUND: u64 = 0x90D0;

/// Probability per round that a target restarts and all its counters start from zero.
pub(crate) const RESET_PER_ROUND: f64 = 1.0e-4;

/// Latency distribution shape of the synthetic histograms (log-logistic, shape 2.5).
fn latency_cdf(x: f64) -> f64 {
    if x.is_infinite() {
        return 1.0;
    }
    1.0 / (1.0 + x.powf(-2.5))
}

/// Runtime state of one series: its shape, seeds and current value in grain units.
#[derive(Debug, Clone)]
pub(crate) struct Evolution {
    shape: Shape,
    /// Draws that are private to this series.
    own_seed: u64,
    /// Draws shared with the series that move together with this one (histogram family).
    group_seed: u64,
    /// Draws shared by every series of one scrape target (restarts).
    target_seed: u64,
    units: f64,
}

impl Evolution {
    pub(crate) fn new(shape: Shape, own_seed: u64, group_seed: u64, target_seed: u64) -> Self {
        let mut e = Self {
            shape,
            own_seed,
            group_seed,
            target_seed,
            units: 0.0,
        };
        e.units = e.initial_units();
        e
    }

    fn initial_units(&self) -> f64 {
        match self.shape {
            Shape::Constant(v) => v,
            Shape::Counter { rate, grain, .. } => {
                // Counters are met mid-life: somewhere between minutes and weeks of history.
                let rounds = 20.0 + 40_000.0 * unit(self.own_seed, 0, SALT_INIT).powi(2);
                grain.to_units(rate * rounds, 0.0)
            }
            Shape::Gauge { min, max, grain, .. } => {
                grain.to_units(min + (max - min) * unit(self.own_seed, 0, SALT_INIT), 0.5)
            }
            Shape::Bucket { le, rate, scale } => {
                let observed = (rate * (20.0 + 40_000.0 * unit(self.group_seed, 0, SALT_INIT).powi(2))).floor();
                (observed * latency_cdf(le / scale)).floor()
            }
            Shape::HistogramSum { rate, scale } => {
                let observed = (rate * (20.0 + 40_000.0 * unit(self.group_seed, 0, SALT_INIT).powi(2))).floor();
                observed * scale * 1.3
            }
        }
    }

    /// The value reported in the current round.
    pub(crate) fn value(&self) -> f64 {
        match self.shape {
            Shape::Constant(v) => v,
            Shape::Counter { grain, .. } | Shape::Gauge { grain, .. } => grain.to_value(self.units),
            Shape::Bucket { .. } | Shape::HistogramSum { .. } => self.units,
        }
    }

    /// Moves to `round` (>= 1); called exactly once per series per round, in round order.
    pub(crate) fn advance(&mut self, round: u64) {
        let restarted = unit(self.target_seed, round, SALT_RESET) < RESET_PER_ROUND;
        match self.shape {
            Shape::Constant(_) => {}
            Shape::Counter { rate, jitter, grain } => {
                let u = unit(self.own_seed, round, SALT_STEP);
                let x = (rate * (1.0 + jitter * (2.0 * u - 1.0))).max(0.0);
                let inc = grain.to_units(x, unit(self.own_seed, round, SALT_ROUND));
                self.units = if restarted { inc } else { self.units + inc };
            }
            Shape::Gauge { step, min, max, grain } => {
                let u = unit(self.own_seed, round, SALT_STEP);
                let next = (grain.to_value(self.units) + step * (2.0 * u - 1.0)).clamp(min, max);
                self.units = grain.to_units(next, 0.5);
            }
            Shape::Bucket { le, rate, scale } => {
                let (n, s) = histogram_round(self.group_seed, round, rate, scale);
                let inc = (n * latency_cdf(le / s)).floor();
                self.units = if restarted { inc } else { self.units + inc };
            }
            Shape::HistogramSum { rate, scale } => {
                let (n, s) = histogram_round(self.group_seed, round, rate, scale);
                let inc = n * s * 1.3;
                self.units = if restarted { inc } else { self.units + inc };
            }
        }
    }
}

/// Observations and effective latency scale of one histogram in one round; identical for
/// every series of the family because it only depends on the group seed, which is what keeps
/// the buckets cumulative (`le` monotonic) at every instant.
fn histogram_round(group_seed: u64, round: u64, rate: f64, scale: f64) -> (f64, f64) {
    let n = (rate * (0.5 + unit(group_seed, round, SALT_COUNT))).floor();
    let s = scale * (0.7 + 0.6 * unit(group_seed, round, SALT_SCALE));
    (n, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_deterministic_and_in_range() {
        for r in 0..1000 {
            let a = unit(7, r, 3);
            assert_eq!(a, unit(7, r, 3));
            assert!((0.0..1.0).contains(&a));
        }
        assert_ne!(unit(7, 1, 3), unit(8, 1, 3));
    }

    #[test]
    fn decimals_grain_reports_clean_decimals() {
        let g = Grain::Decimals(2);
        let units = g.to_units(1234.567, 0.0);
        assert_eq!(units, 123456.0);
        assert_eq!(g.to_value(units).to_string(), "1234.56");
    }

    #[test]
    fn counters_only_grow_between_restarts() {
        let mut e = Evolution::new(
            Shape::Counter {
                rate: 3.7,
                jitter: 0.5,
                grain: Grain::Multiple(1.0),
            },
            1,
            1,
            99,
        );
        let mut prev = e.value();
        let mut resets = 0;
        for r in 1..5000 {
            e.advance(r);
            let v = e.value();
            if v < prev {
                resets += 1;
            }
            assert_eq!(v.fract(), 0.0, "integer counter reported {v}");
            prev = v;
        }
        assert!(resets <= 5, "{resets} resets in 5000 rounds");
    }

    #[test]
    fn gauges_stay_in_bounds() {
        let mut e = Evolution::new(
            Shape::Gauge {
                step: 1e8,
                min: 1e9,
                max: 2e9,
                grain: Grain::Multiple(4096.0),
            },
            5,
            5,
            5,
        );
        for r in 1..2000 {
            e.advance(r);
            let v = e.value();
            assert!((1e9 - 4096.0..=2e9 + 4096.0).contains(&v), "{v}");
            assert_eq!(v % 4096.0, 0.0);
        }
    }

    #[test]
    fn histogram_buckets_stay_cumulative() {
        let les = [0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, f64::INFINITY];
        let mut family: Vec<Evolution> = les
            .iter()
            .map(|&le| {
                Evolution::new(
                    Shape::Bucket {
                        le,
                        rate: 40.0,
                        scale: 0.08,
                    },
                    le.to_bits(),
                    77,
                    3,
                )
            })
            .collect();
        for r in 1..1000 {
            for e in &mut family {
                e.advance(r);
            }
            let values: Vec<f64> = family.iter().map(Evolution::value).collect();
            assert!(values.windows(2).all(|w| w[0] <= w[1]), "round {r}: {values:?}");
        }
        assert!(family[7].value() > family[0].value());
    }
}
