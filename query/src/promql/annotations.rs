//! Annotations: what Prometheus says beside an answer without failing the query — warnings
//! (`PromQL warning: ...`) and infos (`PromQL info: ...`), each ending with the position of the
//! expression it is about. The texts are Prometheus 3's, since clients show them verbatim.

use super::value::{format_plain, go_exponent};

/// Warnings and infos of one query, each listed once, in the order first raised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// `PromQL warning: ...` texts (the answer may be wrong or partial).
    pub warnings: Vec<String>,
    /// `PromQL info: ...` texts (the answer is right but the query may not mean what it says).
    pub infos: Vec<String>,
}

impl Annotations {
    /// Adds `other`'s annotations not already here, in their order.
    pub(crate) fn extend(&mut self, other: Annotations) {
        other.warnings.into_iter().for_each(|w| self.warn(w));
        other.infos.into_iter().for_each(|i| self.info(i));
    }

    pub(crate) fn warn(&mut self, text: String) {
        if !self.warnings.contains(&text) {
            self.warnings.push(text);
        }
    }

    pub(crate) fn info(&mut self, text: String) {
        if !self.infos.contains(&text) {
            self.infos.push(text);
        }
    }

    pub(crate) fn quantile_out_of_range(&mut self, q: f64, position: &str) {
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            self.warn(at(
                &format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    go_format_g(q)
                ),
                position,
            ));
        }
    }

    /// `limit_ratio`'s ratio beyond ±1, capped to `cap`.
    pub(crate) fn ratio_out_of_range(&mut self, r: f64, cap: f64, position: &str) {
        self.warn(at(
            &format!(
                "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                go_format_g(r),
                go_format_g(cap)
            ),
            position,
        ));
    }

    pub(crate) fn bad_bucket_label(&mut self, metric_name: &str, le: &str, position: &str) {
        let mut text = format!("PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?}");
        if !metric_name.is_empty() {
            text.push_str(&format!(" for metric name {metric_name:?}"));
        }
        self.warn(at(&text, position));
    }

    pub(crate) fn possible_non_counter(&mut self, metric_name: &str, position: &str) {
        self.info(at(
            &format!(
                "PromQL info: metric might not be a counter, name does not end in \
                 _total/_sum/_count/_bucket: {metric_name:?}"
            ),
            position,
        ));
    }

    pub(crate) fn forced_monotonicity(&mut self, position: &str) {
        self.info(at(
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see \
             https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)",
            position,
        ));
    }
}

/// Native-histogram annotations, worded as Prometheus's.
impl Annotations {
    pub(crate) fn mixed_floats_histograms(&mut self, metric_name: &str, position: &str) {
        self.warn(at(
            &format!("PromQL warning: encountered a mix of histograms and floats for metric name {metric_name:?}"),
            position,
        ));
    }

    pub(crate) fn mixed_floats_histograms_aggregation(&mut self, position: &str) {
        self.warn(at(
            "PromQL warning: encountered a mix of histograms and floats for aggregation",
            position,
        ));
    }

    pub(crate) fn mixed_exponential_custom(&mut self, metric_name: &str, position: &str) {
        self.warn(at(
            &format!(
                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets \
                 schemas for metric name {metric_name:?}"
            ),
            position,
        ));
    }

    pub(crate) fn histogram_not_counter(&mut self, metric_name: &str, position: &str) {
        self.warn(at(
            &format!("PromQL warning: this native histogram metric is not a counter: {metric_name:?}"),
            position,
        ));
    }

    pub(crate) fn histogram_not_gauge(&mut self, metric_name: &str, position: &str) {
        self.warn(at(
            &format!("PromQL warning: this native histogram metric is not a gauge: {metric_name:?}"),
            position,
        ));
    }

    /// `text` after `PromQL info: `, the metric name added when known (`maybeAddMetricName`).
    pub(crate) fn histogram_nan_info(&mut self, text: &str, metric_name: &str, position: &str) {
        let mut full = format!("PromQL info: {text}");
        if !metric_name.is_empty() {
            full.push_str(&format!(" for metric name {metric_name:?}"));
        }
        self.info(at(&full, position));
    }

    pub(crate) fn mixed_classic_native(&mut self, metric_name: &str, position: &str) {
        let mut text = "PromQL warning: vector contains a mix of classic and native histograms".to_string();
        if !metric_name.is_empty() {
            text.push_str(&format!(" for metric name {metric_name:?}"));
        }
        self.warn(at(&text, position));
    }

    /// A binary operator that has no meaning for the two sample types (`float`, `histogram`).
    pub(crate) fn incompatible_types(&mut self, lhs: &str, operator: &str, rhs: &str, position: &str) {
        self.info(at(
            &format!(
                "PromQL info: incompatible sample types encountered for binary operator {operator:?}: {lhs} {operator} {rhs}"
            ),
            position,
        ));
    }

    /// `operation` is `addition` or `subtraction`.
    pub(crate) fn reconciled_custom_buckets(&mut self, operation: &str, position: &str) {
        self.info(at(
            &format!("PromQL info: mismatched custom buckets were reconciled during {operation}"),
            position,
        ));
    }
}

/// Prometheus's `annoErr`: the message, then ` (line:col)` when the position is known.
fn at(text: &str, position: &str) -> String {
    if position.is_empty() {
        text.to_string()
    } else {
        format!("{text} ({position})")
    }
}

/// Go's `%g` for a float: shortest digits, exponent form (`1e+06`, `1e-05`) below 1e-4 and from
/// 1e6 up.
pub(crate) fn go_format_g(f: f64) -> String {
    if !f.is_finite() || f == 0.0 {
        return format_plain(f);
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        return format_plain(f);
    }
    go_exponent(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_prometheus() {
        let mut a = Annotations::default();
        a.possible_non_counter("foo", "1:6");
        a.possible_non_counter("foo", "1:6");
        a.quantile_out_of_range(1.5, "1:10");
        a.quantile_out_of_range(0.5, "1:10");
        a.bad_bucket_label("x_bucket", "abc", "1:24");
        assert_eq!(
            a.infos,
            vec![
                "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \
                 \"foo\" (1:6)"
            ]
        );
        assert_eq!(
            a.warnings,
            vec![
                "PromQL warning: quantile value should be between 0 and 1, got 1.5 (1:10)",
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"abc\" for metric name \
                 \"x_bucket\" (1:24)",
            ]
        );
    }

    #[test]
    fn go_g_format() {
        for (v, want) in [
            (1.5, "1.5"),
            (-2.0, "-2"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(go_format_g(v), want);
        }
    }
}
