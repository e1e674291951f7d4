//! Element-wise math: `abs`, `ceil`, `floor`, `exp`, `ln`, `log2`, `log10`, `sqrt`, `sgn`, the
//! trigonometric and hyperbolic functions, `deg`, `rad`, `round` and the `clamp` family.
//! Transcendental functions come from the platform's libm, which may differ from Go's `math`
//! in the last bit.

use crate::statistics::{go_log2, go_log10, go_max, go_min};

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
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Deg,
    Rad,
}

impl MathFn {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
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
            "sin" => MathFn::Sin,
            "cos" => MathFn::Cos,
            "tan" => MathFn::Tan,
            "asin" => MathFn::Asin,
            "acos" => MathFn::Acos,
            "atan" => MathFn::Atan,
            "sinh" => MathFn::Sinh,
            "cosh" => MathFn::Cosh,
            "tanh" => MathFn::Tanh,
            "asinh" => MathFn::Asinh,
            "acosh" => MathFn::Acosh,
            "atanh" => MathFn::Atanh,
            "deg" => MathFn::Deg,
            "rad" => MathFn::Rad,
            _ => return None,
        })
    }

    pub(crate) fn apply(self, v: f64) -> f64 {
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
            MathFn::Sin => v.sin(),
            MathFn::Cos => v.cos(),
            MathFn::Tan => v.tan(),
            MathFn::Asin => v.asin(),
            MathFn::Acos => v.acos(),
            MathFn::Atan => v.atan(),
            MathFn::Sinh => v.sinh(),
            MathFn::Cosh => v.cosh(),
            MathFn::Tanh => v.tanh(),
            MathFn::Asinh => v.asinh(),
            MathFn::Acosh => v.acosh(),
            MathFn::Atanh => v.atanh(),
            // The same operation order as Prometheus, so the rounding is the same.
            MathFn::Deg => v * 180.0 / std::f64::consts::PI,
            MathFn::Rad => v * std::f64::consts::PI / 180.0,
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
        assert_eq!(MathFn::Deg.apply(std::f64::consts::PI), 180.0);
        assert_eq!(MathFn::Rad.apply(180.0), std::f64::consts::PI);
        assert_eq!(MathFn::Sin.apply(0.0), 0.0);
        assert_eq!(MathFn::Cos.apply(0.0), 1.0);
        assert_eq!(MathFn::Atanh.apply(1.0), f64::INFINITY);
        assert!(MathFn::Acosh.apply(0.5).is_nan());
        assert!(MathFn::Asin.apply(2.0).is_nan());
        assert_eq!(MathFn::Tanh.apply(f64::INFINITY), 1.0);
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
