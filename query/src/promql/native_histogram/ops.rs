//! Arithmetic on native histograms: scaling, addition and subtraction (at the coarser schema
//! and the wider zero bucket of the two), schema reduction, and counter-reset detection.

use tributary_storage::signals::ResetHint;

use super::NativeHistogram;

/// Why two histograms cannot be added: one uses custom buckets and the other does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MixedSchemas;

/// The index of bucket `idx` of `from` in the coarser schema `to` (Prometheus's `targetIdx`).
fn target_index(idx: i32, from: i32, to: i32) -> i32 {
    ((idx - 1) >> (from - to)) + 1
}

fn merge(a: &[(i32, f64)], b: &[(i32, f64)], sign: f64) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(ia, ca)), Some(&(ib, cb))) if ia == ib => {
                out.push((ia, ca + sign * cb));
                i += 1;
                j += 1;
            }
            (Some(&(ia, ca)), Some(&(ib, _))) if ia < ib => {
                out.push((ia, ca));
                i += 1;
            }
            (Some(&x), None) => {
                out.push(x);
                i += 1;
            }
            (_, Some(&(ib, cb))) => {
                out.push((ib, sign * cb));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// `a += sign * b` by index, in place when every index of `b` is already in `a` (the usual case:
/// one layout, or a sum that has met every bucket of its compacted inputs already).
fn merge_into(a: &mut Vec<(i32, f64)>, b: &[(i32, f64)], sign: f64) {
    if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0) {
        for (x, y) in a.iter_mut().zip(b) {
            x.1 += sign * y.1;
        }
        return;
    }
    let mut j = 0;
    let within = b.iter().all(|&(i, _)| {
        while j < a.len() && a[j].0 < i {
            j += 1;
        }
        j < a.len() && a[j].0 == i
    });
    if !within {
        *a = merge(a, b, sign);
        return;
    }
    let mut j = 0;
    for &(i, c) in b {
        while a[j].0 < i {
            j += 1;
        }
        a[j].1 += sign * c;
    }
}

/// Buckets re-indexed by `f` (monotonic), equal indexes summed.
fn reindex(buckets: &[(i32, f64)], f: impl Fn(i32) -> i32) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for &(i, c) in buckets {
        let t = f(i);
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

impl NativeHistogram {
    /// Scales every count and the sum by `factor`; a negative factor makes it a gauge.
    pub(crate) fn mul(&mut self, factor: f64) {
        self.scale(|x| x * factor);
        if factor < 0.0 {
            self.reset_hint = ResetHint::Gauge;
        }
    }

    /// Divides every count and the sum by `divisor`.
    pub(crate) fn div(&mut self, divisor: f64) {
        self.scale(|x| x / divisor);
        if divisor == 0.0 {
            // Prometheus drops the buckets: every one would be infinite or NaN.
            self.positive.clear();
            self.negative.clear();
        }
        if divisor < 0.0 {
            self.reset_hint = ResetHint::Gauge;
        }
    }

    fn scale(&mut self, f: impl Fn(f64) -> f64) {
        self.count = f(self.count);
        self.sum = f(self.sum);
        self.zero_count = f(self.zero_count);
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 = f(b.1);
        }
    }

    /// Merges buckets down to `target` when it is coarser (exponential schemas only).
    pub(crate) fn reduce_to(&mut self, target: i32) {
        if self.uses_custom_buckets() || target >= self.schema {
            return;
        }
        let from = self.schema;
        self.positive = reindex(&self.positive, |i| target_index(i, from, target));
        self.negative = reindex(&self.negative, |i| target_index(i, from, target));
        self.schema = target;
    }

    /// Drops buckets holding nothing (Prometheus's `Compact(0)`).
    pub(crate) fn compact(&mut self) {
        self.positive.retain(|b| b.1 != 0.0);
        self.negative.retain(|b| b.1 != 0.0);
    }

    /// The smallest threshold ≥ `t` that no bucket straddles.
    fn widened(&self, t: f64) -> f64 {
        let mut t = t;
        for &(i, _) in self.positive.iter().chain(&self.negative) {
            let (lower, upper) = (self.bound(i - 1), self.bound(i));
            if lower < t && upper > t {
                t = t.max(upper);
            }
        }
        t
    }

    /// Moves every bucket within `t` into the zero bucket, whose threshold becomes `t`.
    fn absorb_zero(&mut self, t: f64) {
        if t <= self.zero_threshold {
            return;
        }
        let mut moved = 0.0;
        let schema = self.schema;
        for side in [&mut self.positive, &mut self.negative] {
            side.retain(|&(i, c)| {
                let inside = super::exponential_bound(i, schema) <= t;
                if inside {
                    moved += c;
                }
                !inside
            });
        }
        self.zero_count += moved;
        self.zero_threshold = t;
    }

    /// Adds `other` (subtracts it with `subtract`). Custom buckets with different bounds are
    /// first both reduced to the bounds they share; the answer says whether that happened.
    pub(crate) fn add(&mut self, other: &NativeHistogram, subtract: bool) -> Result<bool, MixedSchemas> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(MixedSchemas);
        }
        let sign = if subtract { -1.0 } else { 1.0 };
        let same_layout = if self.uses_custom_buckets() {
            self.custom_values == other.custom_values
        } else {
            self.schema == other.schema && self.zero_threshold == other.zero_threshold
        };
        if same_layout {
            // The common case (one scrape target's histograms): no copy, no reconciliation.
            self.add_counts(other, sign, subtract);
            return Ok(false);
        }
        let mut other = other.clone();
        let mut reconciled = false;
        if self.uses_custom_buckets() {
            if self.custom_values != other.custom_values {
                let common: Vec<f64> = self
                    .custom_values
                    .iter()
                    .copied()
                    .filter(|v| other.custom_values.contains(v))
                    .collect();
                self.rebound(&common);
                other.rebound(&common);
                reconciled = true;
            }
        } else {
            let schema = self.schema.min(other.schema);
            self.reduce_to(schema);
            other.reduce_to(schema);
            let mut t = self.zero_threshold.max(other.zero_threshold);
            loop {
                let wider = other.widened(self.widened(t));
                if wider == t {
                    break;
                }
                t = wider;
            }
            self.absorb_zero(t);
            other.absorb_zero(t);
        }
        self.add_counts(&other, sign, subtract);
        Ok(reconciled)
    }

    /// Adds `sign` times `other`'s counts, both in the same layout.
    fn add_counts(&mut self, other: &NativeHistogram, sign: f64, subtract: bool) {
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        self.zero_count += sign * other.zero_count;
        merge_into(&mut self.positive, &other.positive, sign);
        merge_into(&mut self.negative, &other.negative, sign);
        if self.reset_hint != other.reset_hint || subtract {
            self.reset_hint = match (self.reset_hint, other.reset_hint) {
                (ResetHint::Gauge, _) | (_, ResetHint::Gauge) => ResetHint::Gauge,
                _ => ResetHint::Unknown,
            };
        }
    }

    /// Custom buckets re-counted against `bounds`, a subset of the current bounds.
    fn rebound(&mut self, bounds: &[f64]) {
        let values = self.custom_values.clone();
        self.positive = reindex(&self.positive, |i| {
            let upper = values.get(i as usize).copied().unwrap_or(f64::INFINITY);
            bounds.iter().position(|&b| b >= upper).unwrap_or(bounds.len()) as i32
        });
        self.custom_values = bounds.into();
    }

    /// Whether `self` follows a counter reset after `previous` (Prometheus's `DetectReset`):
    /// the hint says so, or a count, the zero bucket or any bucket went down, or the layout
    /// got finer.
    pub(crate) fn detect_reset(&self, previous: &NativeHistogram) -> bool {
        match self.reset_hint {
            ResetHint::Yes => return true,
            ResetHint::No => return false,
            _ => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() != previous.uses_custom_buckets() {
            return true;
        }
        if self.uses_custom_buckets() {
            // A series' samples share one copy of their bounds: most checks end at the pointer.
            if !std::sync::Arc::ptr_eq(&self.custom_values, &previous.custom_values)
                && self.custom_values != previous.custom_values
            {
                let mut a = self.clone();
                a.reset_hint = ResetHint::Unknown;
                let mut b = previous.clone();
                let common: Vec<f64> = a
                    .custom_values
                    .iter()
                    .copied()
                    .filter(|v| b.custom_values.contains(v))
                    .collect();
                a.rebound(&common);
                b.rebound(&common);
                return buckets_decrease(&a.positive, &b.positive);
            }
            return buckets_decrease(&self.positive, &previous.positive);
        }
        if self.schema > previous.schema || self.zero_threshold < previous.zero_threshold {
            return true;
        }
        let mut prev = previous.clone();
        prev.reduce_to(self.schema);
        if prev.widened(self.zero_threshold) != self.zero_threshold {
            return true;
        }
        prev.absorb_zero(self.zero_threshold);
        self.zero_count < prev.zero_count
            || buckets_decrease(&self.positive, &prev.positive)
            || buckets_decrease(&self.negative, &prev.negative)
    }
}

/// Whether any bucket of `previous` holds more than the same bucket of `current`.
fn buckets_decrease(current: &[(i32, f64)], previous: &[(i32, f64)]) -> bool {
    let mut j = 0;
    for &(i, c) in previous {
        while j < current.len() && current[j].0 < i {
            j += 1;
        }
        let now = current.get(j).filter(|b| b.0 == i).map_or(0.0, |b| b.1);
        if now < c {
            return true;
        }
    }
    false
}
