//! One data point of each OTLP metric type → the series, native histograms and exemplars it
//! writes (the rules are in [`super`]'s docs).

use super::*;

impl Translator<'_, '_> {
    /// Gauges and sums: one sample on one series.
    pub(super) fn number_point(
        &mut self,
        f: &Family<'_>,
        p: &NumberDataPoint,
        scope: &ScopeCtx<'_>,
        res: &mut ResourceCtx,
    ) -> bool {
        let Some((ts, base)) = self.prelude(f, p.time_unix_nano, &p.attributes, scope, res) else {
            return false;
        };
        let stale = no_recorded_value(p.flags);
        let value = match (stale, p.value) {
            (true, _) => f64::from_bits(STALE_NAN_BITS),
            (false, Some(number_data_point::Value::AsDouble(v))) => v,
            (false, Some(number_data_point::Value::AsInt(v))) => v as f64,
            (false, None) => {
                self.reject(1, || format!("metric {:?}: data point has no value", f.otlp_name));
                return false;
            }
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
        self.series.entry(labels).or_default().push(Sample::new(ts, value));
        res.timestamps.insert(ts);
        true
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
        let Some((ts, base)) = self.prelude(f, p.time_unix_nano, &p.attributes, scope, res) else {
            return false;
        };
        let stale = no_recorded_value(p.flags);
        let (out, bounds) = match self.histogram_series(f, &base, p, stale) {
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
        for (labels, value) in out {
            self.series.entry(labels).or_default().push(Sample::new(ts, value));
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
        stale: bool,
    ) -> Result<(PointSeries, Vec<(f64, usize)>), String> {
        check_explicit_buckets(p).map_err(|r| format!("metric {:?}: {r}", f.otlp_name))?;
        let v = |x: f64| if stale { f64::from_bits(STALE_NAN_BITS) } else { x };
        let mut out = Vec::with_capacity(p.explicit_bounds.len() + 3);
        out.push((
            self.series_labels(f, base, &format!("{}_count", f.name), None)?,
            v(p.count as f64),
        ));
        if let Some(sum) = p.sum {
            out.push((self.series_labels(f, base, &format!("{}_sum", f.name), None)?, v(sum)));
        }
        let bucket = format!("{}_bucket", f.name);
        let mut bounds = Vec::with_capacity(p.explicit_bounds.len() + 1);
        if !p.bucket_counts.is_empty() {
            let mut cumulative = 0u64;
            for (bound, count) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
                cumulative = cumulative.saturating_add(*count);
                let labels = self.series_labels(f, base, &bucket, Some(("le", go_float(*bound))))?;
                bounds.push((*bound, out.len()));
                out.push((labels, v(cumulative as f64)));
            }
        }
        let inf = self.series_labels(f, base, &bucket, Some(("le", go_float(f64::INFINITY))))?;
        bounds.push((f64::INFINITY, out.len()));
        out.push((inf, v(p.count as f64)));
        Ok((out, bounds))
    }

    /// Summaries: `_sum`, `_count` and one `{quantile}` series per quantile.
    pub(super) fn summary_point(
        &mut self,
        f: &Family<'_>,
        p: &SummaryDataPoint,
        scope: &ScopeCtx<'_>,
        res: &mut ResourceCtx,
    ) -> bool {
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
        for (labels, value) in out {
            self.series.entry(labels).or_default().push(Sample::new(ts, value));
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
        let stale = no_recorded_value(p.flags);
        let v = |x: f64| if stale { f64::from_bits(STALE_NAN_BITS) } else { x };
        let mut out = Vec::with_capacity(p.quantile_values.len() + 2);
        out.push((self.series_labels(f, base, &format!("{}_sum", f.name), None)?, v(p.sum)));
        out.push((
            self.series_labels(f, base, &format!("{}_count", f.name), None)?,
            v(p.count as f64),
        ));
        for q in &p.quantile_values {
            out.push((
                self.series_labels(f, base, &f.name, Some(("quantile", go_float(q.quantile))))?,
                v(q.value),
            ));
        }
        Ok(out)
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
