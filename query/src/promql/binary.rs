//! Binary operators: arithmetic, comparisons and set operators between scalars and vectors,
//! with Prometheus's vector matching (`on`/`ignoring`, `group_left`/`group_right`).
//!
//! Matching signatures are computed once per series and interned, so each step costs a lookup
//! per series rather than a comparison per pair.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use tributary_storage::types::Labels;

use super::eval::Guard;
use super::plan::Node;
use super::value::{
    Data, Point, SeriesBuilder, StepCursor, StepSeries, Steps, drop_name, keep_labels, labels_string, merge_series,
    without_labels,
};
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    /// Arithmetic changes what a value means, so the metric name no longer applies.
    fn drops_name(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow | BinOp::Atan2
        )
    }

    /// `(value, keep)`: arithmetic always keeps its result; a comparison keeps the left value
    /// when it holds. Set operators never get here.
    fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            BinOp::Add => (l + r, true),
            BinOp::Sub => (l - r, true),
            BinOp::Mul => (l * r, true),
            BinOp::Div => (l / r, true),
            BinOp::Mod => (l % r, true),
            BinOp::Pow => (l.powf(r), true),
            BinOp::Atan2 => (l.atan2(r), true),
            BinOp::Eq => (l, l == r),
            BinOp::Ne => (l, l != r),
            BinOp::Gt => (l, l > r),
            BinOp::Lt => (l, l < r),
            BinOp::Ge => (l, l >= r),
            BinOp::Le => (l, l <= r),
            BinOp::And | BinOp::Or | BinOp::Unless => (l, false),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cardinality {
    OneToOne,
    /// `group_left`: the right side is the "one" side.
    ManyToOne,
    /// `group_right`: the left side is the "one" side.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Matching {
    pub(crate) card: Cardinality,
    /// `on(labels)` when true, `ignoring(labels)` otherwise (the default is `ignoring()`).
    pub(crate) on: bool,
    pub(crate) labels: Vec<String>,
    /// Labels copied from the "one" side by `group_left(...)`/`group_right(...)`.
    pub(crate) include: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct BinaryNode {
    pub(crate) op: BinOp,
    pub(crate) lhs: Node,
    pub(crate) rhs: Node,
    pub(crate) return_bool: bool,
    pub(crate) matching: Matching,
}

pub(crate) fn evaluate(node: &BinaryNode, lhs: Data, rhs: Data, steps: &Steps, guard: &Guard) -> Result<Data> {
    Ok(match (lhs, rhs) {
        (Data::Scalar(l), Data::Scalar(r)) => Data::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&a, &b)| match node.op.apply(a, b) {
                    // The parser only allows scalar comparisons with `bool`.
                    (_, keep) if node.op.is_comparison() => f64::from(u8::from(keep)),
                    (v, _) => v,
                })
                .collect(),
        ),
        (Data::Vector(v), Data::Scalar(s)) => Data::Vector(vector_scalar(node, v, &s, false)?),
        (Data::Scalar(s), Data::Vector(v)) => Data::Vector(vector_scalar(node, v, &s, true)?),
        (Data::Vector(l), Data::Vector(r)) => Data::Vector(vector_vector(node, l, r, steps, guard)?),
        (l, r) => {
            return Err(Error::Internal(format!(
                "binary operator between {} and {}",
                l.type_name(),
                r.type_name()
            )));
        }
    })
}

fn vector_scalar(
    node: &BinaryNode,
    vector: Vec<StepSeries>,
    scalar: &[f64],
    scalar_left: bool,
) -> Result<Vec<StepSeries>> {
    let (op, return_bool) = (node.op, node.return_bool);
    let drop = op.drops_name() || return_bool;
    let out = vector
        .into_iter()
        .map(|s| {
            let points = s
                .points
                .into_iter()
                .filter_map(|p| {
                    let sv = scalar[p.step as usize];
                    let (l, r) = if scalar_left { (sv, p.value) } else { (p.value, sv) };
                    let (mut value, keep) = op.apply(l, r);
                    // A comparison filters the vector; its elements keep their own values.
                    if op.is_comparison() && scalar_left {
                        value = p.value;
                    }
                    if return_bool {
                        return Some(Point {
                            step: p.step,
                            value: f64::from(u8::from(keep)),
                        });
                    }
                    keep.then_some(Point { step: p.step, value })
                })
                .collect();
            let labels = if drop { drop_name(&s.labels) } else { s.labels };
            StepSeries::new(labels, points)
        })
        .collect();
    merge_series(out)
}

/// The labels two series are matched on.
fn signature(labels: &Labels, m: &Matching) -> Labels {
    if m.on {
        keep_labels(labels, &m.labels)
    } else {
        without_labels(labels, &m.labels)
    }
}

/// Interns signatures so per-step bookkeeping can live in plain vectors.
#[derive(Default)]
struct Signatures {
    ids: HashMap<Labels, u32>,
    labels: Vec<Labels>,
}

impl Signatures {
    fn id(&mut self, sig: Labels) -> u32 {
        match self.ids.entry(sig) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                self.labels.push(e.key().clone());
                *e.insert(self.labels.len() as u32 - 1)
            }
        }
    }
}

fn vector_vector(
    node: &BinaryNode,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    steps: &Steps,
    guard: &Guard,
) -> Result<Vec<StepSeries>> {
    let mut sigs = Signatures::default();
    let lsig: Vec<u32> = lhs
        .iter()
        .map(|s| sigs.id(signature(&s.labels, &node.matching)))
        .collect();
    let rsig: Vec<u32> = rhs
        .iter()
        .map(|s| sigs.id(signature(&s.labels, &node.matching)))
        .collect();
    let sides = Sides {
        lhs: &lhs,
        rhs: &rhs,
        lsig: &lsig,
        rsig: &rsig,
        sigs: &sigs.labels,
    };
    match node.op {
        BinOp::And | BinOp::Or | BinOp::Unless => set_operation(node.op, &sides, steps, guard),
        _ => matched_operation(node, &sides, steps, guard),
    }
}

struct Sides<'a> {
    lhs: &'a [StepSeries],
    rhs: &'a [StepSeries],
    lsig: &'a [u32],
    rsig: &'a [u32],
    sigs: &'a [Labels],
}

/// `and`, `or`, `unless`: filter or union whole elements by signature; labels are untouched.
fn set_operation(op: BinOp, sides: &Sides<'_>, steps: &Steps, guard: &Guard) -> Result<Vec<StepSeries>> {
    // `seen[sig] == step` marks a signature present at the current step.
    let mut seen = vec![u32::MAX; sides.sigs.len()];
    let mut builder = SeriesBuilder::default();
    let lslots: Vec<usize> = sides.lhs.iter().map(|s| builder.slot(s.labels.clone())).collect();
    let rslots: Vec<usize> = if op == BinOp::Or {
        sides.rhs.iter().map(|s| builder.slot(s.labels.clone())).collect()
    } else {
        Vec::new()
    };
    let (mut lcur, mut rcur) = (StepCursor::new(sides.lhs), StepCursor::new(sides.rhs));
    let (mut lnow, mut rnow) = (Vec::new(), Vec::new());
    for step in 0..steps.count as u32 {
        guard.check()?;
        lcur.at(step, &mut lnow);
        rcur.at(step, &mut rnow);
        match op {
            BinOp::Or => {
                for &(i, v) in &lnow {
                    seen[sides.lsig[i] as usize] = step;
                    builder.push(lslots[i], step, v)?;
                }
                for &(j, v) in &rnow {
                    if seen[sides.rsig[j] as usize] != step {
                        builder.push(rslots[j], step, v)?;
                    }
                }
            }
            _ => {
                for &(j, _) in &rnow {
                    seen[sides.rsig[j] as usize] = step;
                }
                let want_match = op == BinOp::And;
                for &(i, v) in &lnow {
                    if (seen[sides.lsig[i] as usize] == step) == want_match {
                        builder.push(lslots[i], step, v)?;
                    }
                }
            }
        }
    }
    Ok(builder.finish())
}

/// Arithmetic and comparisons between vectors: each element of the "many" side meets at most one
/// element of the "one" side with the same signature.
fn matched_operation(node: &BinaryNode, sides: &Sides<'_>, steps: &Steps, guard: &Guard) -> Result<Vec<StepSeries>> {
    let m = &node.matching;
    let swapped = m.card == Cardinality::OneToMany;
    let (many, one, many_sig, one_sig) = if swapped {
        (sides.rhs, sides.lhs, sides.rsig, sides.lsig)
    } else {
        (sides.lhs, sides.rhs, sides.lsig, sides.rsig)
    };
    let one_side = if swapped { "left" } else { "right" };
    // Per signature: (step it was last seen on the one side, which series, its value).
    let mut one_at: Vec<(u32, usize, f64)> = vec![(u32::MAX, 0, 0.0); sides.sigs.len()];
    let mut matched = vec![u32::MAX; sides.sigs.len()];
    let mut matched_outputs: HashSet<(u32, usize)> = HashSet::new();
    let mut output_slot: HashMap<(usize, usize), usize> = HashMap::new();
    let mut last_pair: Vec<Option<(usize, usize)>> = vec![None; many.len()];
    let mut builder = SeriesBuilder::default();
    let (mut many_cur, mut one_cur) = (StepCursor::new(many), StepCursor::new(one));
    let (mut many_now, mut one_now) = (Vec::new(), Vec::new());
    for step in 0..steps.count as u32 {
        guard.check()?;
        many_cur.at(step, &mut many_now);
        one_cur.at(step, &mut one_now);
        if many_now.is_empty() || one_now.is_empty() {
            continue;
        }
        for &(j, w) in &one_now {
            let sig = one_sig[j] as usize;
            if one_at[sig].0 == step {
                let previous = &one[one_at[sig].1].labels;
                return Err(Error::Execution(format!(
                    "found duplicate series for the match group {} on the {one_side} hand-side of the operation: \
                     [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels_string(&sides.sigs[sig]),
                    labels_string(&one[j].labels),
                    labels_string(previous),
                )));
            }
            one_at[sig] = (step, j, w);
        }
        matched_outputs.clear();
        for &(i, v) in &many_now {
            let sig = many_sig[i];
            let (seen_at, j, w) = one_at[sig as usize];
            if seen_at != step {
                continue;
            }
            let (l, r) = if swapped { (w, v) } else { (v, w) };
            let (mut value, keep) = node.op.apply(l, r);
            if node.return_bool {
                value = f64::from(u8::from(keep));
            } else if !keep {
                continue;
            }
            // A series usually meets the same partner at every step: check that before hashing.
            let slot = match last_pair[i] {
                Some((partner, slot)) if partner == j => slot,
                _ => {
                    let slot = match output_slot.entry((i, j)) {
                        Entry::Occupied(e) => *e.get(),
                        Entry::Vacant(e) => {
                            *e.insert(builder.slot(result_labels(&many[i].labels, &one[j].labels, node)))
                        }
                    };
                    last_pair[i] = Some((j, slot));
                    slot
                }
            };
            if m.card == Cardinality::OneToOne {
                if matched[sig as usize] == step {
                    return Err(Error::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
                matched[sig as usize] = step;
            } else if !matched_outputs.insert((sig, slot)) {
                return Err(Error::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches".into(),
                ));
            }
            builder.push(slot, step, value)?;
        }
    }
    Ok(builder.finish())
}

/// Prometheus's `resultMetric`: the "many" side's labels, reduced to the matching labels for
/// one-to-one matching, plus the `group_x(...)` labels taken from the "one" side.
fn result_labels(many: &Labels, one: &Labels, node: &BinaryNode) -> Labels {
    let m = &node.matching;
    let mut labels = if node.op.drops_name() {
        drop_name(many)
    } else {
        many.clone()
    };
    if m.card == Cardinality::OneToOne {
        if m.on {
            labels = keep_labels(&labels, &m.labels);
        } else {
            for name in &m.labels {
                labels.remove(name);
            }
        }
    }
    for name in &m.include {
        match one.get(name) {
            Some(v) => labels.set(name, v),
            None => labels.remove(name),
        }
    }
    if node.return_bool {
        labels = drop_name(&labels);
    }
    labels
}
