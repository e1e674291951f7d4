//! One data point of each OTLP metric type → the series, native histograms and exemplars it
//! writes (the rules are in [`super`]'s docs).

use super::identity::{self, Shape};
use super::*;

/// A number point's value (the staleness marker for `NO_RECORDED_VALUE`); `None` when it has none.
fn number_value(p: &NumberDataPoint) -> Option<f64> {
    if no_recorded_value(p.flags) {
        return Some(f64::from_bits(STALE_NAN_BITS));
    }
    match p.value? {
        number_data_point::Value::AsDouble(v) => Some(v),
        number_data_point::Value::AsInt(v) => Some(v as f64),
    }
}

/// An explicit-bucket histogram point's values, in the order of its series: `_count`, `_sum`
/// (when present), the cumulative buckets, `+Inf`.
fn histogram_values(p: &HistogramDataPoint) -> Vec<f64> {
    let stale = no_recorded_value(p.flags);
    let v = |x: f64| if stale { f64::from_bits(STALE_NAN_BITS) } else { x };
    let mut out = Vec::with_capacity(p.explicit_bounds.len() + 3);
    out.push(v(p.count as f64));
    if let Some(sum) = p.sum {
        out.push(v(sum));
    }
    if !p.bucket_counts.is_empty() {
        let mut cumulative = 0u64;
        for count in p.bucket_counts.iter().take(p.explicit_bounds.len()) {
            cumulative = cumulative.saturating_add(*count);
            out.push(v(cumulative as f64));
        }
    }
    out.push(v(p.count as f64));
    out
}

/// A summary point's values, in the order of its series: `_sum`, `_count`, each quantile.
fn summary_values(p: &SummaryDataPoint) -> Vec<f64> {
    let stale = no_recorded_value(p.flags);
    let v = |x: f64| if stale { f64::from_bits(STALE_NAN_BITS) } else { x };
    let mut out = Vec::with_capacity(p.quantile_values.len() + 2);
    out.push(v(p.sum));
    out.push(v(p.count as f64));
    out.extend(p.quantile_values.iter().map(|q| v(q.value)));
    out
}

impl Translator<'_, '_> {
    /// Gauges and sums: one sample on one series.
    pub(super) fn number_point(
        &mut self,
        f: &Family<'_>,
        p: &NumberDataPoint,
        scope: &ScopeCtx<'_>,
        res: &mut ResourceCtx,
    ) -> bool {
        let point = identity::point_key(scope.key, &f.name, &p.attributes, Shape::Number);
        if let (Some(value), Ok(ts)) = (number_value(p), timestamp_ms(p.time_unix_nano))
            && let Ok(keys) = self.known_keys(point, 1)
        {
            // Exemplars need the series' labels: built for them alone, the samples stay fast.
            let exemplar_labels = if no_recorded_value(p.flags) || p.exemplars.is_empty() {
                Some(None)
            } else {
                self.base_labels(&p.attributes, scope, res)
                    .and_then(|base| self.series_labels(f, &base, &f.name, None))
                    .ok()
                    .map(Some)
            };
            if let Some(labels) = exemplar_labels {
                if let Some(labels) = labels {
                    self.add_exemplars(&labels, &p.exemplars, ts);
                }
                self.commit(keys, ts, &[value], res);
                return true;
            }
        }
        let Some((ts, base)) = self.prelude(f, p.time_unix_nano, &p.attributes, scope, res) else {
            return false;
        };
        let stale = no_recorded_value(p.flags);
        let Some(value) = number_value(p) else {
            self.reject(1, || format!("metric {:?}: data point has no value", f.otlp_name));
            return false;
        };
        let labels = match self.series_labels(f, &base, &f.name, None) {
            Ok(l) => l,
            Err(reason) => {
                self.reject(1, || reason);
                return false;
            }
        };
        if !stale {
            self.add_exemplars(&labels, &p.exemplars, ts);
        }
        self.push_sample(labels, Sample::new(ts, value), identity::series_key(point, 0));
        res.timestamps.insert(ts);
        true
    }

    /// The fast path's end: a point's `values` kept by the raw keys of its series.
    fn commit(&mut self, keys: Vec<RawKey>, ts: TimestampMs, values: &[f64], res: &mut ResourceCtx) {
        self.fast
            .extend(keys.into_iter().zip(values).map(|(k, &v)| (k, Sample::new(ts, v))));
        res.timestamps.insert(ts);
    }

    /// A fast histogram point's exemplars with the labels of the buckets they go to (the first
    /// whose bound covers the value, as the full path places them), building only those
    /// buckets' labels; `None` when the labels cannot be built (the full path then explains).
    fn bucket_exemplars(
        &self,
        f: &Family<'_>,
        p: &HistogramDataPoint,
        ts: TimestampMs,
        scope: &ScopeCtx<'_>,
        res: &ResourceCtx,
    ) -> Option<Vec<(Labels, Exemplar)>> {
        let base = self.base_labels(&p.attributes, scope, res).ok()?;
        let bucket = format!("{}_bucket", f.name);
        let explicit = if p.bucket_counts.is_empty() {
            &[][..]
        } else {
            &p.explicit_bounds[..]
        };
        let mut out = Vec::new();
        for e in self.exemplars_of(&p.exemplars, ts) {
            let Some(&bound) = explicit.iter().chain([&f64::INFINITY]).find(|b| e.value <= **b) else {
                continue;
            };
            out.push((
                self.series_labels(f, &base, &bucket, Some(("le", go_float(bound))))
                    .ok()?,
                e,
            ));
        }
        Some(out)
    }

    /// Explicit-bucket histograms: `_count`, `_sum` (when present), and cumulative `_bucket{le}`
    /// series ending with `le="+Inf"` = count. Exemplars go to the first bucket whose bound covers
    /// their value.
    pub(super) fn histogram_point(
        &mut self,
        f: &Family<'_>,
        p: &HistogramDataPoint,
        scope: &ScopeCtx<'_>,
        res: &mut ResourceCtx,
    ) -> bool {
        let shape = Shape::Histogram {
            bounds: &p.explicit_bounds,
            buckets: p.bucket_counts.len(),
            sum: p.sum.is_some(),
        };
        let point = identity::point_key(scope.key, &f.name, &p.attributes, shape);
        if check_explicit_buckets(p).is_ok()
            && let Ok(ts) = timestamp_ms(p.time_unix_nano)
        {
            let values = histogram_values(p);
            if let Ok(keys) = self.known_keys(point, values.len()) {
                let exemplars = if no_recorded_value(p.flags) || p.exemplars.is_empty() {
                    Some(Vec::new())
                } else {
                    self.bucket_exemplars(f, p, ts, scope, res)
                };
                if let Some(exemplars) = exemplars {
                    for (labels, e) in exemplars {
                        self.exemplars.entry(labels).or_default().push(e);
                    }
                    self.commit(keys, ts, &values, res);
                    return true;
                }
            }
        }
        let Some((ts, base)) = self.prelude(f, p.time_unix_nano, &p.attributes, scope, res) else {
            return false;
        };
        let stale = no_recorded_value(p.flags);
        let (out, bounds) = match self.histogram_series(f, &base, p) {
            Ok(b) => b,
            Err(reason) => {
                self.reject(1, || reason);
                return false;
            }
        };
        if !stale {
            for e in self.exemplars_of(&p.exemplars, ts) {
                // Prometheus: the first (lowest) bucket whose upper bound is >= the value.
                if let Some(&(_, i)) = bounds.iter().find(|(bound, _)| e.value <= *bound) {
                    self.exemplars.entry(out[i].0.clone()).or_default().push(e);
                }
            }
        }
        for (j, (labels, value)) in out.into_iter().enumerate() {
            self.push_sample(labels, Sample::new(ts, value), identity::series_key(point, j));
        }
        res.timestamps.insert(ts);
        true
    }

    /// An explicit-bucket histogram point's series and values, plus each bucket's bound and
    /// index in those series (ascending, `+Inf` last) for placing exemplars; or why they cannot
    /// be stored. Indexes, not label sets: cloning every bucket's labels for the rare exemplar
    /// doubled the allocations of the whole translation.
    pub(super) fn histogram_series(
        &self,
        f: &Family<'_>,
        base: &[Label],
        p: &HistogramDataPoint,
    ) -> Result<(PointSeries, Vec<(f64, usize)>), String> {
        check_explicit_buckets(p).map_err(|r| format!("metric {:?}: {r}", f.otlp_name))?;
        // Labels in the order of `histogram_values`, which the fast path shares.
        let mut labels = Vec::with_capacity(p.explicit_bounds.len() + 3);
        labels.push(self.series_labels(f, base, &format!("{}_count", f.name), None)?);
        if p.sum.is_some() {
            labels.push(self.series_labels(f, base, &format!("{}_sum", f.name), None)?);
        }
        let bucket = format!("{}_bucket", f.name);
        let mut bounds = Vec::with_capacity(p.explicit_bounds.len() + 1);
        if !p.bucket_counts.is_empty() {
            for bound in &p.explicit_bounds {
                bounds.push((*bound, labels.len()));
                labels.push(self.series_labels(f, base, &bucket, Some(("le", go_float(*bound))))?);
            }
        }
        bounds.push((f64::INFINITY, labels.len()));
        labels.push(self.series_labels(f, base, &bucket, Some(("le", go_float(f64::INFINITY))))?);
        Ok((labels.into_iter().zip(histogram_values(p)).collect(), bounds))
    }

    /// Summaries: `_sum`, `_count` and one `{quantile}` series per quantile.
    pub(super) fn summary_point(
        &mut self,
        f: &Family<'_>,
        p: &SummaryDataPoint,
        scope: &ScopeCtx<'_>,
        res: &mut ResourceCtx,
    ) -> bool {
        let shape = Shape::Summary {
            quantiles: &p.quantile_values,
        };
        let point = identity::point_key(scope.key, &f.name, &p.attributes, shape);
        if let Ok(ts) = timestamp_ms(p.time_unix_nano) {
            let values = summary_values(p);
            if let Ok(keys) = self.known_keys(point, values.len()) {
                self.commit(keys, ts, &values, res);
                return true;
            }
        }
        let Some((ts, base)) = self.prelude(f, p.time_unix_nano, &p.attributes, scope, res) else {
            return false;
        };
        let out = match self.summary_series(f, &base, p) {
            Ok(o) => o,
            Err(reason) => {
                self.reject(1, || reason);
                return false;
            }
        };
        for (j, (labels, value)) in out.into_iter().enumerate() {
            self.push_sample(labels, Sample::new(ts, value), identity::series_key(point, j));
        }
        res.timestamps.insert(ts);
        true
    }

    /// A summary point's series and values, or why they cannot be stored.
    pub(super) fn summary_series(
        &self,
        f: &Family<'_>,
        base: &[Label],
        p: &SummaryDataPoint,
    ) -> Result<PointSeries, String> {
        // Labels in the order of `summary_values`, which the fast path shares.
        let mut labels = Vec::with_capacity(p.quantile_values.len() + 2);
        labels.push(self.series_labels(f, base, &format!("{}_sum", f.name), None)?);
        labels.push(self.series_labels(f, base, &format!("{}_count", f.name), None)?);
        for q in &p.quantile_values {
            labels.push(self.series_labels(f, base, &f.name, Some(("quantile", go_float(q.quantile))))?);
        }
        Ok(labels.into_iter().zip(summary_values(p)).collect())
    }

    /// Exponential histograms: one native-histogram sample on the family-named series.
    pub(super) fn exp_histogram_point(
        &mut self,
        f: &Family<'_>,
        p: &ExponentialHistogramDataPoint,
        scope: &ScopeCtx<'_>,
        res: &mut ResourceCtx,
    ) -> bool {
        let Some((ts, base)) = self.prelude(f, p.time_unix_nano, &p.attributes, scope, res) else {
            return false;
        };
        let stale = no_recorded_value(p.flags);
        let built = exp_histogram::convert(p, ts, stale)
            .map_err(|r| format!("metric {:?}: {r}", f.otlp_name))
            .and_then(|sample| Ok((sample, self.series_labels(f, &base, &f.name, None)?)));
        let (sample, labels) = match built {
            Ok(b) => b,
            Err(reason) => {
                self.reject(1, || reason);
                return false;
            }
        };
        if !stale {
            self.add_exemplars(&labels, &p.exemplars, ts);
        }
        self.histograms.entry(labels).or_default().push(sample);
        res.timestamps.insert(ts);
        true
    }

    pub(super) fn add_exemplars(
        &mut self,
        series: &Labels,
        list: &[tributary_proto::otlp::metrics::v1::Exemplar],
        ts: TimestampMs,
    ) {
        let exemplars = self.exemplars_of(list, ts);
        if !exemplars.is_empty() {
            self.exemplars.entry(series.clone()).or_default().extend(exemplars);
        }
    }

    /// Converts exemplars: value, time (the point's when unset), `trace_id`/`span_id` as
    /// lower-case hex, and the filtered attributes (names normalised) while the whole stays
    /// within OpenMetrics' 128 runes.
    pub(super) fn exemplars_of(
        &self,
        list: &[tributary_proto::otlp::metrics::v1::Exemplar],
        point_ts: TimestampMs,
    ) -> Vec<Exemplar> {
        let max_value = self.opts.limits.max_label_value_bytes;
        list.iter()
            .filter_map(|e| {
                let value = match e.value? {
                    exemplar::Value::AsDouble(v) => v,
                    exemplar::Value::AsInt(v) => v as f64,
                };
                let timestamp = match e.time_unix_nano {
                    0 => point_ts,
                    ns => timestamp_ms(ns).ok()?,
                };
                let mut runes = 0usize;
                let mut attrs = Vec::new();
                for kv in &e.filtered_attributes {
                    let Ok(name) = label_name(&kv.key) else { continue };
                    let value = label_value(kv.value.as_ref());
                    // Count the name as stored: normalising can lengthen it (`0` → `key_0`).
                    runes += name.chars().count() + value.chars().count();
                    if !name.starts_with("__") && value.len() <= max_value {
                        attrs.push(Label { name, value });
                    }
                }
                let mut ids = Vec::new();
                for (key, id) in [("trace_id", &e.trace_id), ("span_id", &e.span_id)] {
                    if id.iter().any(|b| *b != 0) && id.len() * 2 <= max_value {
                        let value = hex::encode(id);
                        runes += key.len() + value.len();
                        ids.push(Label::new(key, value));
                    }
                }
                let mut labels = if runes <= MAX_EXEMPLAR_RUNES { attrs } else { Vec::new() };
                // Last wins in `Labels::new`: an attribute can never shadow the real ids.
                labels.extend(ids);
                Some(Exemplar {
                    labels: Labels::new(labels),
                    value,
                    timestamp,
                })
            })
            .collect()
    }
}
