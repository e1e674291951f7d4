//! Reading a selector in parts, so a long range over many series never sits in memory whole.
//!
//! An aggregation whose input is computed series by series from one selector
//! (`sum by (cluster) (rate(errors[30d]))`, `max(x > 3)`, `count(up)`) gives the same answer
//! when its input is split into parts, each part aggregated, and the parts' aggregates
//! aggregated again: `sum` of sums, `min` of minimums, `max` of maximums, `sum` of counts,
//! `group` of groups. So when such a selector holds more samples in range than
//! `query.part_samples` ([`Source::series_samples`](tributary_storage::read::Source) counts them
//! without reading them), its series are cut into parts of about that many samples, and each
//! part is read (`SelectRequest::only`) and evaluated on its own. Memory then holds one part's
//! samples and the per-part aggregates.
//!
//! Series whose labels differ only in `__name__` stay in one part: a function that drops the
//! name must still see both to report them as duplicates.
//!
//! Aggregations that need every input at once (`avg`, `stddev`, `topk`, `quantile`, ...) and
//! expressions that combine series (binary operations between vectors, `label_replace`, ...)
//! are read whole, under `query.max_samples`.

use tributary_storage::read::SeriesSize;
use tributary_storage::types::{CLUSTER, Labels};

use super::aggregate::{AggOp, AggregateNode, AggregateParam};
use super::binary::BinOp;
use super::plan::Node;
use super::value::drop_name;

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
    let mut parts: Vec<Vec<Labels>> = Vec::new();
    let mut filled = 0usize;
    let mut rest = keyed.into_iter().peekable();
    while let Some((group, first)) = rest.next() {
        let mut members = vec![first];
        while group.is_some()
            && let Some((_, next)) = rest.next_if(|(g, _)| *g == group)
        {
            members.push(next);
        }
        let samples: usize = members.iter().map(|s| s.samples).sum();
        if parts.is_empty() || (filled > 0 && filled + samples > budget) {
            parts.push(Vec::new());
            filled = 0;
        }
        let part = parts.last_mut().expect("one part");
        part.extend(members.into_iter().map(|s| s.labels));
        filled += samples;
    }
    parts
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
