//! Element-wise math: `abs`, `ceil`, `floor`, `exp`, `ln`, `log2`, `log10`, `sqrt`, `sgn`,
//! `round` and the `clamp` family.

use crate::promql::statistics::{go_log2, go_log10, go_max, go_min};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MathFn {
    Abs,
    Ceil,
    Floor,
    Exp,
    Ln,
    Log2,
    Log10,
    Sqrt,
    Sgn,
}

impl MathFn {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "abs" => MathFn::Abs,
            "ceil" => MathFn::Ceil,
            "floor" => MathFn::Floor,
            "exp" => MathFn::Exp,
            "ln" => MathFn::Ln,
            "log2" => MathFn::Log2,
            "log10" => MathFn::Log10,
            "sqrt" => MathFn::Sqrt,
            "sgn" => MathFn::Sgn,
            _ => return None,
        })
    }

    pub fn apply(self, v: f64) -> f64 {
        match self {
            MathFn::Abs => v.abs(),
            MathFn::Ceil => v.ceil(),
            MathFn::Floor => v.floor(),
            MathFn::Exp => v.exp(),
            MathFn::Ln => v.ln(),
            MathFn::Log2 => go_log2(v),
            MathFn::Log10 => go_log10(v),
            MathFn::Sqrt => v.sqrt(),
            // Zero keeps its sign and NaN stays NaN.
            MathFn::Sgn if v < 0.0 => -1.0,
            MathFn::Sgn if v > 0.0 => 1.0,
            MathFn::Sgn => v,
        }
    }
}

/// `clamp(v, min, max)`: nothing at all when `max < min`; NaN bounds propagate as in Go.
pub(crate) fn clamp(v: f64, min: f64, max: f64) -> Option<f64> {
    if max < min {
        return None;
    }
    Some(go_max(min, go_min(max, v)))
}

/// `round(v, to_nearest)`: ties round up.
pub(crate) fn round(v: f64, to_nearest: f64) -> f64 {
    // Multiplying by the inverse loses less precision than dividing, as Prometheus notes.
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_wise_functions() {
        assert_eq!(MathFn::Abs.apply(-2.5), 2.5);
        assert_eq!(MathFn::Ceil.apply(1.1), 2.0);
        assert_eq!(MathFn::Floor.apply(-1.1), -2.0);
        assert_eq!(MathFn::Sqrt.apply(16.0), 4.0);
        assert_eq!(MathFn::Ln.apply(1.0), 0.0);
        assert_eq!(MathFn::Log2.apply(1024.0), 10.0);
        assert_eq!(MathFn::Log10.apply(0.001), -3.0);
        assert_eq!(MathFn::Sgn.apply(-3.0), -1.0);
        assert!(MathFn::Sgn.apply(-0.0).is_sign_negative());
        assert!(MathFn::Sgn.apply(f64::NAN).is_nan());
        assert_eq!(MathFn::from_name("deriv"), None);
    }

    #[test]
    fn round_and_clamp() {
        assert_eq!(round(2.5, 1.0), 3.0);
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(12.3, 5.0), 10.0);
        assert_eq!(round(0.123, 0.01), 0.12);
        assert_eq!(clamp(5.0, 0.0, 1.0), Some(1.0));
        assert_eq!(clamp(-5.0, 0.0, 1.0), Some(0.0));
        assert_eq!(clamp(0.5, 1.0, 0.0), None);
        assert!(clamp(f64::NAN, 0.0, 1.0).unwrap().is_nan());
    }
}
