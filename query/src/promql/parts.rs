//! Reading a selector in parts, so a long range over many series never sits in memory whole.
//!
//! An aggregation whose input is computed series by series from one selector
//! (`sum by (cluster) (rate(errors[30d]))`, `max(x > 3)`, `count(up)`) gives the same answer
//! when its input is split into parts, each part aggregated, and the parts' aggregates
//! aggregated again: `sum` of sums, `min` of minimums, `max` of maximums, `sum` of counts,
//! `group` of groups. So when such a selector holds more samples in range than
//! `query.part_samples` (`Source::select_within` counts them first, and reads them in the same
//! call only within that budget), its series are sized (`Source::series_samples`, without
//! reading samples) and cut into parts of about that many samples, and each part is read
//! (`SelectRequest::only`) and evaluated on its own, the next part read while one is
//! evaluated. Memory then holds two parts' samples at most and the per-part aggregates.
//!
//! Series whose labels differ only in `__name__` stay in one part: a function that drops the
//! name must still see both to report them as duplicates.
//!
//! A selector read from a rollup tier over many windows (a range query: `sum by (cluster)
//! (rate(errors[30d]))` at a 1 h step reads 720 hourly rows per series) is cut by cluster
//! instead ([`cut_clusters`], sized by `Source::bucket_sizes` from file keys alone): each part
//! adds a `cluster` matcher, so it opens only its clusters' rollup files. Aggregations whose
//! selectors open the same files (the two sides of a burn rate) are cut alike, the budget shared,
//! and read a part at a time together, so storage decodes each file once for all of them. One
//! window per series (an instant query, a rule) reads day summaries and is read whole.
//!
//! Aggregations that need every input at once (`avg`, `stddev`, `topk`, `quantile`, ...) and
//! expressions that combine series (binary operations between vectors, `label_replace`, ...)
//! are read whole, under `query.max_samples`.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::try_join_all;
use tributary_storage::read::{ClusterRows, SeriesSize, pack};
use tributary_storage::rollup::{Bucket, Resolution};
use tributary_storage::signals::HistogramSeries as StoredHistograms;
use tributary_storage::types::{CLUSTER, Labels, MatchOp, Matcher, Sample, SeriesIdSet, TimeRange};

use super::aggregate::{self, AggOp, AggregateNode, AggregateParam};
use super::annotations::Annotations;
use super::binary::BinOp;
use super::eval::{self, Guard};
use super::fetch::requests;
use super::plan::{Node, Plan, Selector};
use super::value::{StepSeries, Steps, drop_name};
use super::{Engine, blocking};
use crate::error::{Error, Result};

/// The outermost aggregations of `root` that can be evaluated in parts (none inside a
/// subquery, whose steps are its own), with their selector.
pub(crate) fn candidates(root: &mut Node) -> Vec<(&mut Node, usize)> {
    let mut out = Vec::new();
    collect(root, &mut out);
    out
}

fn collect<'a>(node: &'a mut Node, out: &mut Vec<(&'a mut Node, usize)>) {
    if let Some(sel) = splittable(node) {
        out.push((node, sel));
        return;
    }
    match node {
        Node::Negate(inner) => collect(inner, out),
        Node::Binary(b) => {
            collect(&mut b.lhs, out);
            collect(&mut b.rhs, out);
        }
        Node::Aggregate(a) => collect(&mut a.expr, out),
        Node::Call(c) => c.args.iter_mut().for_each(|a| collect(a, out)),
        Node::Number(_)
        | Node::String(_)
        | Node::Vector(_)
        | Node::Matrix(_)
        | Node::Subquery(_)
        | Node::Evaluated(_) => {}
    }
}

/// The selector of an aggregation whose parts' aggregates can be aggregated again.
fn splittable(node: &Node) -> Option<usize> {
    let Node::Aggregate(a) = node else { return None };
    let regroups = matches!(a.op, AggOp::Sum | AggOp::Min | AggOp::Max | AggOp::Count | AggOp::Group);
    if !regroups || !matches!(a.param, AggregateParam::None) {
        return None;
    }
    per_series(&a.expr)
}

/// The one selector `node` reads, when each of its output series comes from one series of it.
fn per_series(node: &Node) -> Option<usize> {
    match node {
        Node::Vector(sel) | Node::Matrix(sel) => Some(*sel),
        Node::Negate(inner) => per_series(inner),
        Node::Binary(b) if !matches!(b.op, BinOp::And | BinOp::Or | BinOp::Unless) => {
            match (constant(&b.lhs), constant(&b.rhs)) {
                (true, false) => per_series(&b.rhs),
                (false, true) => per_series(&b.lhs),
                _ => None,
            }
        }
        Node::Call(c) if c.func.per_series() => {
            let mut varying = c.args.iter().filter(|a| !constant(a));
            match (varying.next(), varying.next()) {
                (Some(arg), None) => per_series(arg),
                _ => None,
            }
        }
        _ => None,
    }
}

fn constant(node: &Node) -> bool {
    match node {
        Node::Number(_) => true,
        Node::Negate(inner) => constant(inner),
        _ => false,
    }
}

/// Cuts series into parts of at most `budget` samples (a part holds at least one group of
/// series equal but for `__name__`, however large).
///
/// Series of one metric are taken in the order storage keeps them (by `cluster`, then the other
/// labels), so a part's rows lie together in each file and no page is decoded for many parts.
/// Series of several metrics are ordered by their labels without the name instead, which keeps
/// each group together.
pub(crate) fn cut(sizes: Vec<SeriesSize>, budget: usize) -> Vec<Vec<Labels>> {
    let one_metric = sizes
        .windows(2)
        .all(|w| w[0].labels.metric_name() == w[1].labels.metric_name());
    // Each series with the group it belongs to (`None`: a group of its own, as every series of
    // one metric is: no two are equal but for the name).
    let mut keyed: Vec<(Option<Labels>, SeriesSize)> = sizes
        .into_iter()
        .map(|s| ((!one_metric).then(|| drop_name(&s.labels)), s))
        .collect();
    if one_metric {
        fn cluster(s: &SeriesSize) -> &str {
            s.labels.get(CLUSTER).unwrap_or("")
        }
        keyed.sort_by(|(_, a), (_, b)| cluster(a).cmp(cluster(b)).then_with(|| a.labels.cmp(&b.labels)));
    } else {
        keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.labels.cmp(&b.1.labels)));
    }
    // Groups kept whole: each goes into a part as one item.
    let mut groups: Vec<(Vec<Labels>, usize)> = Vec::new();
    let mut rest = keyed.into_iter().peekable();
    while let Some((group, first)) = rest.next() {
        let mut members = vec![first];
        while group.is_some()
            && let Some((_, next)) = rest.next_if(|(g, _)| *g == group)
        {
            members.push(next);
        }
        let samples: usize = members.iter().map(|s| s.samples).sum();
        groups.push((members.into_iter().map(|s| s.labels).collect(), samples));
    }
    pack(groups, budget)
        .into_iter()
        .map(|part| part.into_iter().flatten().collect())
        .collect()
}

/// What one bucket row weighs against `query.part_samples`, counted in samples: a bucket read
/// holds each row as a `Bucket` (several times a raw sample's size) while it is merged.
pub(crate) const BUCKET_ROW_SAMPLES: usize = std::mem::size_of::<Bucket>() / std::mem::size_of::<Sample>();

/// Cuts the clusters of a bucket read into parts of at most `budget` samples (rows weighed by
/// [`BUCKET_ROW_SAMPLES`]; a cluster larger than the budget is a part of its own), in cluster
/// order. A selector read from a rollup tier is cut by cluster rather than by series: rollup
/// files hold one cluster each, so a part restricted to its clusters opens only their files,
/// where a part of series would decode every file to find its rows.
pub(crate) fn cut_clusters(mut sizes: Vec<ClusterRows>, budget: usize) -> Vec<Vec<String>> {
    sizes.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    pack(
        sizes
            .into_iter()
            .map(|c| (c.cluster, c.rows.saturating_mul(BUCKET_ROW_SAMPLES))),
        budget,
    )
}

/// `sel` restricted to the series whose `cluster` label is one of `clusters` (`""`: series
/// without one), by a matcher added to each of its alternatives.
pub(crate) fn only_clusters(sel: &Selector, clusters: &[String]) -> Result<Selector> {
    let names: Vec<String> = clusters.iter().map(|c| regex::escape(c)).collect();
    let matcher = Matcher::new(MatchOp::RegexMatch, CLUSTER, names.join("|"))
        .map_err(|e| Error::Internal(format!("cluster matcher of a part: {e}")))?;
    let mut part = sel.clone();
    for set in &mut part.matcher_sets {
        set.push(matcher.clone());
    }
    Ok(part)
}

/// The aggregation that combines the parts' aggregates of `node` (an aggregation
/// [`candidates`] returned): same grouping, `sum` for `count`.
pub(crate) fn regroup(node: &Node) -> Option<AggregateNode> {
    let Node::Aggregate(a) = node else { return None };
    let op = match a.op {
        AggOp::Count => AggOp::Sum,
        op => op,
    };
    Some(AggregateNode {
        op,
        expr: Node::Number(0.0),
        param: AggregateParam::None,
        grouping: a.grouping.clone(),
        param_position: a.param_position.clone(),
    })
}

/// One part of a selector read in parts (see `parts`).
#[derive(Clone)]
enum Part {
    /// These series of a selector read raw.
    Series(Vec<Labels>),
    /// The series of these clusters of a selector read from a rollup tier.
    Clusters(Vec<String>),
}

/// How an aggregation to split is cut: into parts of series, or by cluster (a rollup tier's
/// read: its resolution and the clusters' sizes, cut once the aggregations reading the same
/// files are grouped).
enum Sizing {
    Parts(Vec<Part>),
    Clusters(Resolution, Vec<ClusterRows>),
}

impl Sizing {
    /// Whether two rollup reads (of one range) open the same files: same tier and clusters.
    fn same_files(&self, other: &Sizing) -> bool {
        matches!((self, other), (Sizing::Clusters(a, x), Sizing::Clusters(b, y))
            if a == b && x.iter().map(|c| &c.cluster).eq(y.iter().map(|c| &c.cluster)))
    }
}

impl Engine {
    /// Evaluates, a part at a time, every aggregation of `plan` that this module can split and
    /// whose selector holds more than `part_samples` samples; each is replaced in the plan by
    /// [`Node::Evaluated`] (an index into the returned values) and its selector is no
    /// longer fetched. Takes each selector's native histograms and the sizes
    /// [`Engine::prefetch`] counted.
    ///
    /// Aggregations whose selectors read the same rollup files (same tier, range and clusters:
    /// the two sides of a burn rate) are read together, a part of each at once, with the
    /// budget shared between them: their reads of one file then meet in storage, which decodes
    /// it once for both (`RollupsReader::select`), and their evaluations run side by side.
    pub(super) async fn evaluate_in_parts(
        &self,
        plan: &mut Plan,
        steps: Steps,
        lookback_ms: i64,
        guard: &Guard,
        annotations: &mut Annotations,
        (histograms, counts): (&[Vec<StoredHistograms>], &HashMap<usize, usize>),
    ) -> Result<Vec<Vec<StepSeries>>> {
        let Plan { root, selectors } = plan;
        // Each aggregation to split, with its parts (series), or its clusters' sizes (to be cut
        // once the aggregations reading the same files are known).
        let mut split: Vec<(&mut Node, usize, TimeRange, Sizing)> = Vec::new();
        for (node, sel) in candidates(root) {
            let Some(range) = selectors[sel].fetch else {
                continue;
            };
            // Parts read floats only: a selector holding native histograms is read whole.
            if !histograms[sel].is_empty() {
                continue;
            }
            let sizing = match selectors[sel].tier {
                None => {
                    // Counting is cheaper than listing: most selectors fit, and are then read whole.
                    let budget = self.cfg.part_samples;
                    let count = match counts.get(&sel) {
                        Some(&count) => count,
                        None => self.count_samples(&selectors[sel], range, budget).await?,
                    };
                    if count <= budget {
                        continue;
                    }
                    let sizes = self.series_samples(&selectors[sel], range).await?;
                    if sizes.iter().map(|s| s.samples).sum::<usize>() <= budget {
                        continue;
                    }
                    Sizing::Parts(cut(sizes, budget).into_iter().map(Part::Series).collect())
                }
                // One window per series reads day summaries: few rows, read whole.
                Some(_) if selectors[sel].one_window => continue,
                Some(res) => {
                    let sizes = self.bucket_sizes(&selectors[sel], range, res).await?;
                    if cut_clusters(sizes.clone(), self.cfg.part_samples).len() <= 1 {
                        continue;
                    }
                    Sizing::Clusters(res, sizes)
                }
            };
            split.push((node, sel, range, sizing));
        }
        // Groups of aggregations read together, each with its parts.
        let mut groups: Vec<(Vec<usize>, Vec<Part>)> = Vec::new();
        for i in 0..split.len() {
            if groups.iter().any(|(members, _)| members.contains(&i)) {
                continue;
            }
            let members: Vec<usize> = match &split[i].3 {
                Sizing::Parts(_) => vec![i],
                Sizing::Clusters(..) => (i..split.len())
                    .filter(|&j| split[j].2 == split[i].2 && split[j].3.same_files(&split[i].3))
                    .collect(),
            };
            let parts = match &split[i].3 {
                Sizing::Parts(parts) => parts.clone(),
                Sizing::Clusters(..) => {
                    // Each cluster weighs what its largest read holds; the members share the budget.
                    let sizes = ClusterRows::merge(
                        members
                            .iter()
                            .filter_map(|&m| match &split[m].3 {
                                Sizing::Clusters(_, sizes) => Some(sizes),
                                Sizing::Parts(_) => None,
                            })
                            .flatten()
                            .map(|c| (c.cluster.clone(), c.rows)),
                        usize::max,
                    );
                    let budget = self.cfg.part_samples / members.len();
                    cut_clusters(sizes, budget).into_iter().map(Part::Clusters).collect()
                }
            };
            groups.push((members, parts));
        }

        let mut evaluated: Vec<Option<Vec<StepSeries>>> = split.iter().map(|_| None).collect();
        let mut aggregations: Vec<(Arc<Node>, usize, TimeRange)> = Vec::with_capacity(split.len());
        for (i, (node, sel, range, _)) in split.into_iter().enumerate() {
            aggregations.push((Arc::new(std::mem::replace(node, Node::Evaluated(i))), sel, range));
        }
        for (members, parts) in groups {
            let mut partials: Vec<Vec<StepSeries>> = members.iter().map(|_| Vec::new()).collect();
            self.metrics.part_aggregations.inc_by(members.len() as u64);
            // A part's members, read together (none without a part).
            let (aggregations, selectors_now, members_now) = (&aggregations, &selectors[..], &members[..]);
            let read = |part: Option<Part>| async move {
                let Some(part) = part else { return Ok(None) };
                self.metrics.parts.inc_by(members_now.len() as u64);
                try_join_all(members_now.iter().map(|&m| {
                    let (_, sel, range) = &aggregations[m];
                    self.read_part(selectors_now, *sel, *range, part.clone(), guard)
                }))
                .await
                .map(Some)
            };
            let mut parts = parts.into_iter();
            let mut next = read(parts.next()).await?;
            // Each part is evaluated (on blocking threads) while the next one is read: reading
            // ends in merging each series' rows on one thread, and evaluation waits on it
            // otherwise. Memory holds two parts at most.
            while let Some(inputs) = next {
                let evaluations = members.iter().zip(inputs).map(|(&m, inputs)| {
                    let (aggregation, selectors, guard) = (aggregations[m].0.clone(), selectors.clone(), guard.clone());
                    blocking(move || eval::evaluate_node(&aggregation, selectors, steps, lookback_ms, guard, inputs))
                });
                let (evaluated, ahead) = tokio::try_join!(try_join_all(evaluations), read(parts.next()))?;
                for (out, (partial, more)) in partials.iter_mut().zip(evaluated) {
                    out.extend(partial);
                    annotations.extend(more);
                }
                next = ahead;
            }
            for (&m, partials) in members.iter().zip(partials) {
                let (aggregation, sel, _) = &aggregations[m];
                let regroup =
                    regroup(aggregation).ok_or_else(|| Error::Internal("a part is not an aggregation".into()))?;
                let guard = guard.clone();
                let merged = blocking(move || aggregate::evaluate(&regroup, partials, None, &steps, &guard)).await?;
                tracing::debug!(selector = sel, series = merged.len(), "aggregation evaluated in parts");
                evaluated[m] = Some(merged);
                selectors[*sel].fetch = None;
            }
        }
        Ok(evaluated.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// The inputs of one part of selector `sel`: its series read raw, or its clusters' buckets
    /// (each part under `query.max_samples` on its own).
    async fn read_part(
        &self,
        selectors: &[Selector],
        sel: usize,
        range: TimeRange,
        part: Part,
        guard: &Guard,
    ) -> Result<eval::Inputs> {
        let mut inputs = eval::Inputs::empty(selectors.len());
        match part {
            Part::Series(series) => {
                let only: SeriesIdSet = series.iter().map(Labels::series_id).collect();
                inputs.fetched[sel] = self
                    .fetch_selector(&selectors[sel], range, Some(Arc::new(only)), guard)
                    .await?;
            }
            Part::Clusters(clusters) => {
                let (part, res) = (only_clusters(&selectors[sel], &clusters)?, selectors[sel].tier);
                let buckets = self
                    .fetch_buckets(&part, range, res.expect("a bucketed selector"), guard)
                    .await?;
                if buckets.iter().map(|s| s.buckets.len()).sum::<usize>() > self.cfg.max_samples {
                    return Err(Error::TooManySamples);
                }
                inputs.buckets[sel] = buckets;
            }
        }
        Ok(inputs)
    }

    /// The selectors (with their fetched range) of the aggregations this module could split that
    /// read raw samples: what [`Engine::prefetch`] counts for [`Engine::evaluate_in_parts`].
    pub(super) fn splittable(plan: &mut Plan) -> Vec<(usize, TimeRange)> {
        let Plan { root, selectors } = plan;
        candidates(root)
            .into_iter()
            .filter_map(|(_, sel)| Some((sel, selectors[sel].fetch.filter(|_| selectors[sel].tier.is_none())?)))
            .collect()
    }

    /// At most how many samples a selector reads in `range` (a series matching several
    /// alternatives counts once per alternative).
    async fn count_samples(&self, sel: &Selector, range: TimeRange, limit: usize) -> Result<usize> {
        let requests = requests(&sel.matcher_sets, range, None);
        let counts = try_join_all(requests.iter().map(|r| self.source.count_samples(r, limit))).await?;
        Ok(counts.into_iter().sum())
    }

    /// Per cluster, at most how many rows a selector's bucket read of `res` in `range` holds
    /// (its alternatives added).
    async fn bucket_sizes(&self, sel: &Selector, range: TimeRange, res: Resolution) -> Result<Vec<ClusterRows>> {
        let requests = requests(&sel.matcher_sets, range, None);
        let sizes = try_join_all(requests.iter().map(|r| self.source.bucket_sizes(r, res))).await?;
        Ok(ClusterRows::sum(
            sizes.into_iter().flatten().map(|c| (c.cluster, c.rows)),
        ))
    }

    /// The series a selector reads in `range`, each once, with at most how many samples each.
    async fn series_samples(&self, sel: &Selector, range: TimeRange) -> Result<Vec<SeriesSize>> {
        let requests = requests(&sel.matcher_sets, range, None);
        let answers = try_join_all(requests.iter().map(|r| self.source.series_samples(r))).await?;
        // A series matching several alternatives is one series.
        Ok(SeriesSize::merge(answers.into_iter().flatten(), usize::max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(pairs: &[(&str, &str)], samples: usize) -> SeriesSize {
        SeriesSize {
            labels: Labels::from_pairs(pairs),
            samples,
        }
    }

    #[test]
    fn parts_fit_the_budget_and_keep_name_twins_together() {
        let sizes = vec![
            size(&[("__name__", "a"), ("pod", "1")], 40),
            size(&[("__name__", "b"), ("pod", "1")], 40),
            size(&[("__name__", "a"), ("pod", "2")], 50),
            size(&[("__name__", "a"), ("pod", "3")], 50),
            size(&[("__name__", "a"), ("pod", "4")], 500),
        ];
        let parts = cut(sizes, 100);
        let pods = |p: &Vec<Labels>| p.iter().map(|l| l.get("pod").unwrap().to_string()).collect::<Vec<_>>();
        let got: Vec<Vec<String>> = parts.iter().map(pods).collect();
        // pod 1's twins (80) fill a part together; 2 and 3 share one; 4 alone exceeds it.
        assert_eq!(got, [vec!["1", "1"], vec!["2", "3"], vec!["4"]]);
        assert!(cut(Vec::new(), 100).is_empty());
    }

    #[test]
    fn clusters_are_cut_in_order_weighing_bucket_rows() {
        let rows = |c: &str, rows: usize| ClusterRows {
            cluster: c.to_string(),
            rows,
        };
        let w = BUCKET_ROW_SAMPLES;
        let sizes = vec![rows("c", 10), rows("a", 10), rows("", 5), rows("b", 100), rows("d", 9)];
        let got = cut_clusters(sizes, 20 * w);
        // Series without a cluster first; a cluster over the budget stands alone.
        assert_eq!(got, [vec!["", "a"], vec!["b"], vec!["c", "d"]]);
        assert!(cut_clusters(Vec::new(), 10).is_empty());
        let sel = Selector {
            matcher_sets: vec![vec![], vec![Matcher::new(MatchOp::Equal, "job", "x").unwrap()]],
            ..Selector::default()
        };
        let part = only_clusters(&sel, &["".to_string(), "a.b".to_string()]).unwrap();
        for set in &part.matcher_sets {
            let m = set.last().unwrap();
            assert!(m.matches("") && m.matches("a.b"));
            assert!(!m.matches("axb") && !m.matches("a"), "escaped and anchored");
        }
        assert_eq!(part.matcher_sets[1].len(), 2);
    }

    #[test]
    fn one_metric_is_cut_in_storage_order() {
        // Storage sorts by cluster before the other labels; label order would put `app` first.
        let sizes = vec![
            size(&[("__name__", "m"), ("app", "a"), ("cluster", "z")], 10),
            size(&[("__name__", "m"), ("app", "b"), ("cluster", "y")], 10),
            size(&[("__name__", "m"), ("app", "c"), ("cluster", "y")], 10),
            size(&[("__name__", "m"), ("app", "d")], 10),
        ];
        let parts = cut(sizes, 20);
        let apps: Vec<Vec<&str>> = parts
            .iter()
            .map(|p| p.iter().map(|l| l.get("app").unwrap()).collect())
            .collect();
        assert_eq!(apps, [vec!["d", "b"], vec!["c", "a"]]);
    }
}
