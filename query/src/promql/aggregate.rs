//! Aggregation operators (`sum`, `avg`, `topk`, `limitk`, `count_values`, ...) with `by`/`without`.
//!
//! Each input series is assigned its group once; its points are then folded into per-group
//! accumulators (series by series over a block of steps for the reducing operators, step by step
//! for the selecting ones), so the work is linear in the number of points.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use tributary_storage::types::{LabelRef, Labels, METRIC_NAME, SeriesId};

use super::annotations::go_format_g;
use super::eval::Guard;
use super::plan::Node;
use super::value::{Point, SeriesBuilder, StepCursor, StepSeries, Steps, format_plain, keep_labels, without_labels};
use crate::error::{Error, Result};
use crate::statistics::{kahan_sum_inc, quantile};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
    /// Prometheus 3's `limitk`: the first k series of each group, in input (label) order.
    Limitk,
    /// Prometheus 3's `limit_ratio`: a deterministic sample of each group by series hash.
    LimitRatio,
}

#[derive(Debug)]
pub(crate) enum AggregateParam {
    None,
    /// `k` of topk/bottomk, `φ` of quantile.
    Scalar(Node),
    /// The output label of count_values.
    Label(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grouping {
    pub(crate) without: bool,
    pub(crate) labels: Vec<String>,
}

impl Grouping {
    /// The labels [`Grouping::group_labels`] keeps, read in place.
    fn selected<'a>(&'a self, labels: &'a Labels) -> impl Iterator<Item = LabelRef<'a>> + 'a {
        labels.iter().filter(move |l| {
            let listed = self.labels.iter().any(|n| n == l.name);
            if self.without {
                l.name != METRIC_NAME && !listed
            } else {
                listed
            }
        })
    }

    /// `by`: only the listed labels; `without`: all but the listed labels and `__name__`.
    pub(crate) fn group_labels(&self, labels: &Labels) -> Labels {
        if self.without {
            without_labels(labels, &self.labels)
        } else {
            keep_labels(labels, &self.labels)
        }
    }
}

#[derive(Debug)]
pub(crate) struct AggregateNode {
    pub(crate) op: AggOp,
    pub(crate) expr: Node,
    pub(crate) param: AggregateParam,
    pub(crate) grouping: Grouping,
    /// Where the parameter starts in the query text (`line:col`), for annotations.
    pub(crate) param_position: String,
}

/// `param` is the scalar parameter, one value per step: like Prometheus 3.5 and later, each step
/// uses its own (`topk(scalar(k), x)` over a range keeps a different number of series per step).
pub(crate) fn evaluate(
    node: &AggregateNode,
    input: Vec<StepSeries>,
    param: Option<&[f64]>,
    steps: &Steps,
    guard: &Guard,
) -> Result<Vec<StepSeries>> {
    let param = Param(param.unwrap_or_default());
    match (node.op, &node.param) {
        (AggOp::Topk | AggOp::Bottomk | AggOp::Limitk, _) => select_k(node, input, param, steps, guard),
        // Grouping does not change which series a ratio keeps: each is judged on its labels.
        (AggOp::LimitRatio, _) => limit_ratio(input, param, steps, guard),
        (AggOp::CountValues, AggregateParam::Label(label)) => count_values(node, label, input, steps, guard),
        (AggOp::CountValues, _) => Err(Error::Internal("count_values without a label parameter".into())),
        _ => reduce(node, input, param, steps, guard),
    }
}

/// An aggregation's scalar parameter, one value per step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Param<'a>(pub(crate) &'a [f64]);

impl Param<'_> {
    /// The value at `step` (NaN where there is none).
    fn at(self, step: u32) -> f64 {
        self.0.get(step as usize).copied().unwrap_or(f64::NAN)
    }

    /// The smallest and largest value over all steps, NaN when any is NaN (Prometheus folds them
    /// with Go's `math.Min`/`math.Max`, which propagate NaN); `None` without values.
    pub(crate) fn range(self) -> Option<(f64, f64)> {
        let first = *self.0.first()?;
        Some(self.0.iter().fold((first, first), |(min, max), &v| {
            if v.is_nan() || min.is_nan() {
                (f64::NAN, f64::NAN)
            } else {
                (min.min(v), max.max(v))
            }
        }))
    }
}

/// The largest float Go converts to an int64 without overflow (Prometheus's `maxInt64`).
const MAX_INT64: f64 = 9_223_372_036_854_774_784.0;
/// The smallest float Go converts to an int64 without underflow (Prometheus's `minInt64`).
const MIN_INT64: f64 = -9_223_372_036_854_775_808.0;

/// Assigns every series a group (numbered in first-seen order) and returns the groups' labels.
/// Groups are found by a hash of the grouping labels read in place, so a label set is built
/// only for each new group, not for every series.
fn assign_groups(grouping: &Grouping, input: &[StepSeries]) -> (Vec<usize>, Vec<Labels>) {
    let mut by_hash: HashMap<u64, usize> = HashMap::new();
    // Groups whose hash collided with another group's (never in practice).
    let mut collided: HashMap<Labels, usize> = HashMap::new();
    let mut labels: Vec<Labels> = Vec::new();
    let group_of = input
        .iter()
        .map(|s| {
            let hash = SeriesId::of(grouping.selected(&s.labels).map(|l| (l.name, l.value))).0;
            match by_hash.entry(hash) {
                Entry::Vacant(e) => {
                    labels.push(grouping.group_labels(&s.labels));
                    *e.insert(labels.len() - 1)
                }
                Entry::Occupied(e) if grouping.selected(&s.labels).eq(labels[*e.get()].iter()) => *e.get(),
                Entry::Occupied(_) => {
                    let key = grouping.group_labels(&s.labels);
                    if let Some(&g) = collided.get(&key) {
                        return g;
                    }
                    labels.push(key.clone());
                    collided.insert(key, labels.len() - 1);
                    labels.len() - 1
                }
            }
        })
        .collect();
    (group_of, labels)
}

/// Running state of one group at one step, mirroring Prometheus's `groupedAggregation`.
#[derive(Clone, Debug, Default)]
struct Accumulator {
    seen: bool,
    value: f64,
    mean: f64,
    kahan: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
}

impl Accumulator {
    fn start(&mut self, op: AggOp, f: f64) {
        self.seen = true;
        self.value = f;
        self.mean = f;
        self.kahan = 0.0;
        self.count = 1.0;
        self.incremental_mean = false;
        match op {
            AggOp::Stddev | AggOp::Stdvar => self.value = if f.is_finite() { 0.0 } else { f64::NAN },
            AggOp::Group => self.value = 1.0,
            AggOp::Quantile => {
                self.values.clear();
                self.values.push(f);
            }
            _ => {}
        }
    }

    fn add(&mut self, op: AggOp, f: f64) {
        match op {
            AggOp::Sum => (self.value, self.kahan) = kahan_sum_inc(f, self.value, self.kahan),
            AggOp::Avg => self.add_to_mean(f),
            AggOp::Max => {
                if self.value < f || self.value.is_nan() {
                    self.value = f;
                }
            }
            AggOp::Min => {
                if self.value > f || self.value.is_nan() {
                    self.value = f;
                }
            }
            AggOp::Count => self.count += 1.0,
            AggOp::Stddev | AggOp::Stdvar => {
                // Welford's online variance.
                self.count += 1.0;
                let delta = f - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (f - self.mean);
            }
            AggOp::Quantile => self.values.push(f),
            AggOp::Group | AggOp::Topk | AggOp::Bottomk | AggOp::CountValues | AggOp::Limitk | AggOp::LimitRatio => {}
        }
    }

    /// Direct Kahan-summed mean while the sum is finite, incremental mean once it would overflow.
    fn add_to_mean(&mut self, f: f64) {
        self.count += 1.0;
        if !self.incremental_mean {
            let (sum, c) = kahan_sum_inc(f, self.value, self.kahan);
            if !sum.is_infinite() {
                (self.value, self.kahan) = (sum, c);
                return;
            }
            self.incremental_mean = true;
            self.mean = self.value / (self.count - 1.0);
            self.kahan /= self.count - 1.0;
        }
        if self.mean.is_infinite() {
            if f.is_infinite() && (self.mean > 0.0) == (f > 0.0) {
                return;
            }
            if f.is_finite() {
                return;
            }
        }
        let current = self.mean + self.kahan;
        (self.mean, self.kahan) = kahan_sum_inc(f / self.count - current / self.count, self.mean, self.kahan);
    }

    fn finish(&mut self, op: AggOp, q: f64) -> f64 {
        self.seen = false;
        match op {
            AggOp::Sum => self.value + self.kahan,
            AggOp::Avg if self.incremental_mean => self.mean + self.kahan,
            AggOp::Avg => (self.value + self.kahan) / self.count,
            AggOp::Count => self.count,
            AggOp::Stdvar => self.value / self.count,
            AggOp::Stddev => (self.value / self.count).sqrt(),
            AggOp::Quantile => quantile(q, &mut self.values),
            _ => self.value,
        }
    }
}

/// How many accumulators [`reduce`] keeps at once: groups times the steps of a block.
const REDUCE_ACCUMULATORS: usize = 1 << 16;

/// Folds the input a block of steps at a time, series by series within a block: each series'
/// points are read in order, where a pass per step visited every series (one cache miss each,
/// 100,000 series × 721 steps for a 30-day burn rate). Each (group, step) still folds its values
/// in input order, so the answer is the same to the bit.
fn reduce(
    node: &AggregateNode,
    input: Vec<StepSeries>,
    q: Param<'_>,
    steps: &Steps,
    guard: &Guard,
) -> Result<Vec<StepSeries>> {
    let (group_of, group_labels) = assign_groups(&node.grouping, &input);
    let groups = group_labels.len();
    let block = (REDUCE_ACCUMULATORS / groups.max(1)).clamp(1, steps.count.max(1));
    let mut accumulators = vec![Accumulator::default(); groups * block];
    let mut points: Vec<Vec<Point>> = vec![Vec::new(); groups];
    let mut pos = vec![0usize; input.len()];
    for start in (0..steps.count).step_by(block) {
        guard.check()?;
        let end = (start + block).min(steps.count);
        for (i, s) in input.iter().enumerate() {
            if i % 4096 == 4095 {
                guard.check()?;
            }
            let row = &mut accumulators[group_of[i] * block..][..block];
            let p = &mut pos[i];
            while let Some(point) = s.points.get(*p).filter(|point| (point.step as usize) < end) {
                let acc = &mut row[point.step as usize - start];
                if acc.seen {
                    acc.add(node.op, point.value);
                } else {
                    acc.start(node.op, point.value);
                }
                // A step's first point counts, as a pass per step read it.
                let step = point.step;
                while s.points.get(*p).is_some_and(|point| point.step == step) {
                    *p += 1;
                }
            }
        }
        for (g, row) in accumulators.chunks_mut(block).enumerate() {
            for (offset, acc) in row[..end - start].iter_mut().enumerate() {
                if acc.seen {
                    let step = (start + offset) as u32;
                    points[g].push(Point {
                        step,
                        value: acc.finish(node.op, q.at(step)),
                    });
                }
            }
        }
    }
    Ok(group_labels
        .into_iter()
        .zip(points)
        .filter(|(_, p)| !p.is_empty())
        .map(|(labels, points)| StepSeries::new(labels, points))
        .collect())
}

/// `topk`/`bottomk`: the k largest/smallest elements of each group, keeping their labels;
/// `limitk`: the first k of each group present at the step, in input order (sorted by labels).
/// NaN ranks below every number either way; an instant result lists groups in first-seen order,
/// each sorted (descending for topk, ascending for bottomk).
///
/// `k` is checked over all steps first, as Prometheus does: when no step's `k` reaches 1 the
/// answer is empty; a NaN anywhere is an error, and so is a `k` a Go int64 cannot hold. Each
/// step then keeps `min(k, series)` (its `k` truncated to an integer), so a `k` far beyond the
/// number of series (`topk(1e12, x)`) keeps every series.
fn select_k(
    node: &AggregateNode,
    input: Vec<StepSeries>,
    k: Param<'_>,
    steps: &Steps,
    guard: &Guard,
) -> Result<Vec<StepSeries>> {
    let Some((min, max)) = k.range() else {
        return Ok(Vec::new());
    };
    if max < 1.0 {
        return Ok(Vec::new());
    }
    if max.is_nan() {
        return Err(Error::Execution("Parameter value is NaN".into()));
    }
    if min <= MIN_INT64 {
        return Err(Error::Execution(format!(
            "Scalar value {} underflows int64",
            go_format_g(min)
        )));
    }
    if max >= MAX_INT64 {
        return Err(Error::Execution(format!(
            "Scalar value {} overflows int64",
            go_format_g(max)
        )));
    }
    let descending = node.op == AggOp::Topk;
    let (group_of, group_labels) = assign_groups(&node.grouping, &input);
    let mut candidates: Vec<Vec<(usize, f64)>> = vec![Vec::new(); group_labels.len()];
    let mut touched: Vec<usize> = Vec::new();
    let mut builder = SeriesBuilder::default();
    let mut slot_of: Vec<Option<usize>> = vec![None; input.len()];
    let mut cursor = StepCursor::new(&input);
    let mut now = Vec::new();
    for step in 0..steps.count as u32 {
        guard.check()?;
        cursor.at(step, &mut now);
        // Checked above: every step's k is a number within int64; `as` truncates like Go's.
        let k = (k.at(step) as i64).min(input.len() as i64);
        if k < 1 {
            continue;
        }
        let k = k as usize;
        touched.clear();
        for &(i, v) in &now {
            let g = group_of[i];
            if candidates[g].is_empty() {
                touched.push(g);
            }
            candidates[g].push((i, v));
        }
        touched.sort_unstable();
        for &g in &touched {
            let group = &mut candidates[g];
            if node.op != AggOp::Limitk {
                group.sort_by(|a, b| rank_order(a.1, b.1, descending));
            }
            for &(i, v) in group.iter().take(k) {
                let slot = *slot_of[i].get_or_insert_with(|| builder.slot(input[i].labels.clone()));
                builder.push(slot, step, v)?;
            }
            group.clear();
        }
    }
    Ok(builder.finish())
}

/// `limit_ratio(r, v)`: per step, the series whose [`sample_offset`] is below `r` (for `r` in
/// (0, 1]) or at least `1 + r` (for `r` in [-1, 0)), so `limit_ratio(r, v)` and
/// `limit_ratio(-(1 - r), v)` split `v` in two without overlap, and a series is either in or out
/// at every step alike. `r` beyond ±1 is capped (the evaluator warns); 0 keeps nothing; NaN
/// anywhere is an error.
fn limit_ratio(input: Vec<StepSeries>, ratio: Param<'_>, steps: &Steps, guard: &Guard) -> Result<Vec<StepSeries>> {
    let Some((min, max)) = ratio.range() else {
        return Ok(Vec::new());
    };
    if min == 0.0 && max == 0.0 {
        return Ok(Vec::new());
    }
    if max.is_nan() {
        return Err(Error::Execution("Ratio value is NaN".into()));
    }
    let offsets: Vec<f64> = input.iter().map(|s| sample_offset(&s.labels)).collect();
    let mut builder = SeriesBuilder::default();
    let mut slot_of: Vec<Option<usize>> = vec![None; input.len()];
    let mut cursor = StepCursor::new(&input);
    let mut now = Vec::new();
    for step in 0..steps.count as u32 {
        guard.check()?;
        cursor.at(step, &mut now);
        let r = ratio.at(step).clamp(-1.0, 1.0);
        if r == 0.0 {
            continue;
        }
        for &(i, v) in &now {
            let kept = if r >= 0.0 {
                offsets[i] < r
            } else {
                offsets[i] >= 1.0 + r
            };
            if kept {
                let slot = *slot_of[i].get_or_insert_with(|| builder.slot(input[i].labels.clone()));
                builder.push(slot, step, v)?;
            }
        }
    }
    Ok(builder.finish())
}

/// Where a series falls in [0, 1] for `limit_ratio`: Prometheus's `HashRatioSampler`, the
/// 64-bit xxHash of the label set in the encoding of Prometheus's default (`stringlabels`)
/// build, divided by `u64::MAX`. Each label is its name and its value, each preceded by its
/// length: one byte below 255, else 255 and three little-endian bytes. So a series is kept or
/// dropped as a stock Prometheus 3 would keep or drop it.
pub(crate) fn sample_offset(labels: &Labels) -> f64 {
    use std::hash::Hasher;
    let mut h = twox_hash::XxHash64::with_seed(0);
    let mut put = |s: &str| {
        let n = s.len();
        if n < 255 {
            h.write(&[n as u8]);
        } else {
            h.write(&[255, n as u8, (n >> 8) as u8, (n >> 16) as u8]);
        }
        h.write(s.as_bytes());
    };
    for l in labels.iter() {
        put(l.name);
        put(l.value);
    }
    h.finish() as f64 / u64::MAX as f64
}

/// Best first; NaN last.
fn rank_order(a: f64, b: f64, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if descending => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// `count_values("label", v)`: counts equal values per group, the value becoming `label`.
fn count_values(
    node: &AggregateNode,
    label: &str,
    input: Vec<StepSeries>,
    steps: &Steps,
    guard: &Guard,
) -> Result<Vec<StepSeries>> {
    if label.is_empty() {
        return Err(Error::Execution(format!("invalid label name {label:?}")));
    }
    let mut grouping = node.grouping.clone();
    if !grouping.without {
        grouping.labels.push(label.to_string());
    }
    let mut builder = SeriesBuilder::default();
    let mut counts: Vec<(usize, f64)> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut cursor = StepCursor::new(&input);
    let mut now = Vec::new();
    for step in 0..steps.count as u32 {
        guard.check()?;
        cursor.at(step, &mut now);
        counts.clear();
        index.clear();
        for &(i, v) in &now {
            let mut labels = input[i].labels.clone();
            labels.set(label, &format_plain(v));
            let slot = builder.slot(grouping.group_labels(&labels));
            match index.entry(slot) {
                Entry::Occupied(e) => counts[*e.get()].1 += 1.0,
                Entry::Vacant(e) => {
                    e.insert(counts.len());
                    counts.push((slot, 1.0));
                }
            }
        }
        for &(slot, count) in &counts {
            builder.push(slot, step, count)?;
        }
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use tributary_storage::types::Label;

    use super::*;

    /// The fold [`reduce`] replaced: every step in turn, each series' first point at it, in
    /// input order.
    fn reduce_step_by_step(node: &AggregateNode, input: &[StepSeries], q: Param<'_>, steps: &Steps) -> Vec<StepSeries> {
        let (group_of, group_labels) = assign_groups(&node.grouping, input);
        let mut accumulators = vec![Accumulator::default(); group_labels.len()];
        let mut points: Vec<Vec<Point>> = vec![Vec::new(); group_labels.len()];
        let mut cursor = StepCursor::new(input);
        let mut now = Vec::new();
        for step in 0..steps.count as u32 {
            cursor.at(step, &mut now);
            let mut touched = Vec::new();
            for &(i, v) in &now {
                let acc = &mut accumulators[group_of[i]];
                if acc.seen {
                    acc.add(node.op, v);
                } else {
                    acc.start(node.op, v);
                    touched.push(group_of[i]);
                }
            }
            for g in touched {
                let value = accumulators[g].finish(node.op, q.at(step));
                points[g].push(Point { step, value });
            }
        }
        group_labels
            .into_iter()
            .zip(points)
            .filter(|(_, p)| !p.is_empty())
            .map(|(labels, points)| StepSeries::new(labels, points))
            .collect()
    }

    #[test]
    fn blocks_of_steps_fold_every_group_and_step_as_a_pass_per_step_did() {
        // Enough groups that a block holds few steps, so series cross block ends; sparse
        // points, repeated steps, and values of mixed magnitude (so the order of additions
        // shows in the bits).
        let (groups, series, steps) = (3_000usize, 7_000usize, 100usize);
        assert!(REDUCE_ACCUMULATORS / groups < steps);
        let mut next = tributary_storage::test_util::xorshift(0x2545_f491_4f6c_dd1d);
        let input: Vec<StepSeries> = (0..series)
            .map(|i| {
                let labels = Labels::new(vec![
                    Label::new("g", format!("{}", next() as usize % groups)),
                    Label::new("i", format!("{i}")),
                ]);
                let mut points = Vec::new();
                for step in 0..steps as u32 {
                    for _ in 0..[0, 0, 1, 1, 1, 2][next() as usize % 6] {
                        let scale = [1e-3, 1.0, 1e9][next() as usize % 3];
                        points.push(Point {
                            step,
                            value: (next() % 10_000) as f64 * scale - 3e3,
                        });
                    }
                }
                StepSeries::new(labels, points)
            })
            .collect();
        let steps = Steps::range(0, (steps as i64 - 1) * 1000, 1000);
        let guard = Guard::new(
            Instant::now() + Duration::from_secs(600),
            Arc::new(AtomicBool::new(false)),
            usize::MAX,
        );
        let q = vec![0.9; steps.count];
        for op in [
            AggOp::Sum,
            AggOp::Avg,
            AggOp::Min,
            AggOp::Max,
            AggOp::Count,
            AggOp::Stddev,
            AggOp::Quantile,
        ] {
            let node = AggregateNode {
                op,
                expr: Node::Number(0.0),
                param: AggregateParam::None,
                grouping: Grouping {
                    without: false,
                    labels: vec!["g".into()],
                },
                param_position: String::new(),
            };
            let want = reduce_step_by_step(&node, &input, Param(&q), &steps);
            let got = reduce(&node, input.clone(), Param(&q), &steps, &guard).unwrap();
            assert_eq!(got.len(), want.len(), "{op:?}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.labels, w.labels, "{op:?}");
                let bits = |s: &StepSeries| s.points.iter().map(|p| (p.step, p.value.to_bits())).collect::<Vec<_>>();
                assert_eq!(bits(g), bits(w), "{op:?} {:?}", g.labels);
            }
        }
    }
}
