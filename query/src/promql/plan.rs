//! Turns the parser's AST into the evaluator's plan: selectors are numbered, their matchers
//! converted and the time range each must read computed; modifiers are resolved to milliseconds
//! (`@ start()`/`@ end()` to the query's bounds), subqueries get the steps they are evaluated at,
//! and anything the engine cannot evaluate is rejected here, before any data is read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp as ParserOp, Matcher as ParserMatcher};
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_DIV, T_EQLC, T_GROUP, T_GTE, T_GTR, T_LAND,
    T_LIMIT_RATIO, T_LIMITK, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MAX, T_MIN, T_MOD, T_MUL, T_NEQ, T_POW, T_QUANTILE,
    T_STDDEV, T_STDVAR, T_SUB, T_SUM, T_TOPK,
};
use promql_parser::parser::{
    AtModifier, Expr, LabelModifier, Offset, SubqueryExpr, VectorMatchCardinality, VectorSelector,
};
use tributary_storage::rollup::{BucketFields, Resolution};
use tributary_storage::types::{METRIC_NAME, MatchOp, Matcher, TimeRange, TimestampMs};

use super::aggregate::{AggOp, AggregateNode, AggregateParam, Grouping};
use super::binary::{BinOp, BinaryNode, Cardinality, Matching};
use super::functions::{self, CallNode};
use super::position::{CallSite, call_sites, line_col};
use super::value::Steps;
use crate::error::{Error, Result};

/// An evaluable query: the node tree and the selectors it reads, indexed by [`Node::Vector`] and
/// [`Node::Matrix`].
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) root: Node,
    pub(crate) selectors: Vec<Selector>,
}

#[derive(Debug)]
pub(crate) enum Node {
    Number(f64),
    String(String),
    /// An instant vector selector (index into [`Plan::selectors`]).
    Vector(usize),
    /// A range vector selector (index into [`Plan::selectors`]); its range is on the selector.
    Matrix(usize),
    /// `expr[range:step]`: a range vector computed by evaluating `expr` at its own steps.
    Subquery(Box<SubqueryNode>),
    /// Unary minus.
    Negate(Box<Node>),
    Binary(Box<BinaryNode>),
    Aggregate(Box<AggregateNode>),
    Call(Box<CallNode>),
    /// An instant vector already evaluated (an aggregation read in parts, see `parts`); index
    /// into the values handed to the evaluator.
    Evaluated(usize),
}

/// A subquery. Its inner expression is evaluated at `steps`: multiples of the subquery step
/// (counted from the Unix epoch, as Prometheus aligns them) covering every window the enclosing
/// steps need; each enclosing step then sees the points in its window `(end - range, end]`.
#[derive(Debug)]
pub(crate) struct SubqueryNode {
    pub(crate) inner: Node,
    pub(crate) steps: Steps,
    pub(crate) range_ms: i64,
    pub(crate) offset_ms: i64,
    pub(crate) at: Option<TimestampMs>,
}

/// One selector of the query: what to read and how its windows sit relative to a step.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selector {
    /// Alternatives (the `or` form of label matchers); a series matching any set is selected.
    pub(crate) matcher_sets: Vec<Vec<Matcher>>,
    pub(crate) offset_ms: i64,
    /// The `@` time, `start()`/`end()` already resolved to the query's bounds.
    pub(crate) at: Option<TimestampMs>,
    /// Zero for instant selectors.
    pub(crate) range_ms: i64,
    /// The closed interval of samples any step can see; `None` when the selector is evaluated at
    /// no step at all (inside a subquery whose windows hold no step).
    pub(crate) fetch: Option<TimeRange>,
    /// The rollup resolution the selector is read at (its function then sees window summaries,
    /// see `buckets`); `None`: raw samples.
    pub(crate) tier: Option<Resolution>,
    /// With a `tier`: the one window does not end on a bucket boundary, so its two partial
    /// buckets are read raw and summarised as pieces (see `Engine::fetch_edged`).
    pub(crate) edges: bool,
    /// With a `tier`: the selector has one window (an instant query or `@`), so its buckets
    /// are read with `Source::select_window` (whole rollup days summarised).
    pub(crate) one_window: bool,
    /// An instant selector evaluated at one time (an instant query or `@`): only each series'
    /// newest sample in its window is used, so reads carry `SelectRequest::newest_only`.
    pub(crate) newest_only: bool,
    /// With a `tier`: the fields of each bucket its function reads, so reads carry
    /// `SelectRequest::bucket_fields`.
    pub(crate) bucket_fields: BucketFields,
}

impl Selector {
    /// The time a step's window ends at: the step (or the `@` time), minus the offset.
    pub(crate) fn reference_time(&self, t: TimestampMs) -> TimestampMs {
        self.at.unwrap_or(t).saturating_sub(self.offset_ms)
    }

    /// The first step (at or after `from`) whose reference time reaches `t`: the next step that
    /// can see a sample stamped `t`. `None` under `@`, where every step has the same reference
    /// time, or when no step of `steps` reaches it (then `steps.count`).
    pub(crate) fn first_step_reaching(&self, steps: &Steps, t: TimestampMs, from: usize) -> Option<usize> {
        if self.at.is_some() || steps.interval <= 0 {
            return None;
        }
        // reference_time(steps.time(k)) >= t  <=>  start + k * interval >= t + offset.
        let behind = i128::from(t) + i128::from(self.offset_ms) - i128::from(steps.start);
        let k = if behind <= 0 {
            0
        } else {
            (behind + i128::from(steps.interval) - 1) / i128::from(steps.interval)
        };
        Some(usize::try_from(k).unwrap_or(usize::MAX).clamp(from, steps.count))
    }

    /// Windows are left-open, so the first millisecond of the earliest window is excluded.
    fn fetch_range(&self, steps: &Steps, lookback_ms: i64) -> Option<TimeRange> {
        if steps.count == 0 {
            return None;
        }
        let width = if self.range_ms > 0 { self.range_ms } else { lookback_ms };
        let first = self.reference_time(steps.start);
        let last = self.reference_time(steps.end);
        Some(TimeRange::new(first.saturating_sub(width).saturating_add(1), last))
    }
}

/// What planning needs to know about the query beyond its text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlanContext<'a> {
    /// The original query text (for the positions annotations report).
    pub(crate) query: &'a str,
    pub(crate) steps: Steps,
    pub(crate) lookback_ms: i64,
    pub(crate) default_subquery_step_ms: i64,
    /// The rollup resolutions a selector may be read at, coarsest first, each with the
    /// shortest range read from it (ms); empty: raw samples only.
    pub(crate) tiers: &'a [(Resolution, i64)],
}

/// Builds a plan from a parsed expression.
pub(crate) fn plan(expr: &Expr, ctx: PlanContext<'_>) -> Result<Plan> {
    let mut planner = Planner {
        selectors: Vec::new(),
        query_start: ctx.steps.start,
        query_end: ctx.steps.end,
        // Prometheus's `step()` is 0 whenever start and end coincide.
        query_step_ms: if ctx.steps.start == ctx.steps.end {
            0
        } else {
            ctx.steps.interval
        },
        steps: ctx.steps,
        lookback_ms: ctx.lookback_ms,
        default_subquery_step_ms: ctx.default_subquery_step_ms.max(1),
        query: ctx.query.to_string(),
        sites: call_sites(ctx.query),
        next_site: 0,
        tiers: ctx.tiers.to_vec(),
    };
    let root = planner.node(expr)?;
    Ok(Plan {
        root,
        selectors: planner.selectors,
    })
}

#[derive(Debug)]
pub(crate) struct Planner {
    selectors: Vec<Selector>,
    query_start: TimestampMs,
    query_end: TimestampMs,
    /// The query's step (0 for an instant query), whatever subquery is being planned.
    query_step_ms: i64,
    /// The steps the expression being planned is evaluated at (a subquery's inside its body).
    steps: Steps,
    lookback_ms: i64,
    default_subquery_step_ms: i64,
    query: String,
    sites: Vec<CallSite>,
    next_site: usize,
    tiers: Vec<(Resolution, i64)>,
}

impl Planner {
    /// Reads range selector `sel` from the coarsest rollup tier whose buckets tile every window
    /// it is evaluated at: the range at least the tier's minimum and a multiple of its width,
    /// every window end (step or `@` time, minus the offset) a multiple of it. Only for the
    /// functions a window summary answers exactly (see `functions::Func::reads_buckets`).
    ///
    /// A selector with one window end (an instant query, as every rule evaluation is, or `@`)
    /// that falls between boundaries is read from the coarsest tier whose width divides the
    /// range too, with `edges`: its whole buckets from the tier, the two partial buckets at the
    /// window's ends from raw samples (at most one bucket's width each), which summarise exactly
    /// as the whole buckets do. Range queries whose steps are unaligned stay raw: their edges
    /// would cover every raw sample anyway.
    pub(crate) fn choose_tier(&mut self, sel: usize, fields: BucketFields) {
        let steps = self.steps;
        let s = &mut self.selectors[sel];
        if steps.count == 0 || s.range_ms <= 0 {
            return;
        }
        let one_end = s.at.is_some() || steps.count == 1;
        let end = s.reference_time(steps.start);
        let chosen = self.tiers.iter().find_map(|&(res, min_range)| {
            let width = res.ms();
            let tiles = s.range_ms >= min_range && s.range_ms % width == 0;
            let aligned = match s.at {
                Some(_) => res.aligned(end),
                None => res.aligned(end) && (steps.count == 1 || steps.interval % width == 0),
            };
            match (tiles, aligned) {
                (true, true) => Some((res, false)),
                (true, false) if one_end => Some((res, true)),
                _ => None,
            }
        });
        s.tier = chosen.map(|(res, _)| res);
        s.edges = chosen.is_some_and(|(_, edges)| edges);
        s.one_window = chosen.is_some() && one_end;
        // Raw reads ignore the hint: left at its default, they share reads as before.
        s.bucket_fields = if chosen.is_some() { fields } else { BucketFields::All };
    }

    pub(crate) fn node(&mut self, expr: &Expr) -> Result<Node> {
        Ok(match expr {
            Expr::NumberLiteral(n) => Node::Number(n.val),
            Expr::StringLiteral(s) => Node::String(s.val.clone()),
            Expr::Paren(p) => self.node(&p.expr)?,
            Expr::Unary(u) => Node::Negate(Box::new(self.node(&u.expr)?)),
            Expr::VectorSelector(vs) => Node::Vector(self.selector(vs, Duration::ZERO)?),
            Expr::MatrixSelector(ms) => Node::Matrix(self.selector(&ms.vs, ms.range)?),
            Expr::Subquery(sq) => Node::Subquery(Box::new(self.subquery(sq)?)),
            Expr::Extension(_) => return Err(Error::unsupported("extension expressions")),
            Expr::Binary(b) => {
                let op = binary_op(b.op.id())?;
                let modifier = b.modifier.clone().unwrap_or_default();
                if modifier.fill_values.lhs.is_some() || modifier.fill_values.rhs.is_some() {
                    return Err(Error::unsupported(
                        "the fill/fill_left/fill_right binary operator modifiers",
                    ));
                }
                let card = match &modifier.card {
                    VectorMatchCardinality::OneToOne => Cardinality::OneToOne,
                    VectorMatchCardinality::ManyToOne(_) => Cardinality::ManyToOne,
                    VectorMatchCardinality::OneToMany(_) => Cardinality::OneToMany,
                    VectorMatchCardinality::ManyToMany => Cardinality::ManyToMany,
                };
                let include = modifier.card.labels().map(|l| l.labels.clone()).unwrap_or_default();
                let (on, labels) = match &modifier.matching {
                    Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
                    Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
                    None => (false, Vec::new()),
                };
                let matching = Matching {
                    card,
                    on,
                    labels,
                    include,
                };
                Node::Binary(Box::new(BinaryNode {
                    op,
                    lhs: self.node(&b.lhs)?,
                    rhs: self.node(&b.rhs)?,
                    return_bool: modifier.return_bool,
                    matching,
                }))
            }
            Expr::Aggregate(a) => {
                let name = a.op.to_string();
                let op = aggregate_op(a.op.id(), &name)?;
                let positions = self.claim_call(&name);
                let param = match (&a.param, op) {
                    (Some(p), AggOp::CountValues) => AggregateParam::Label(string_arg(p)?),
                    (Some(p), _) => AggregateParam::Scalar(self.node(p)?),
                    (None, _) => AggregateParam::None,
                };
                let grouping = match &a.modifier {
                    Some(LabelModifier::Include(l)) => Grouping {
                        without: false,
                        labels: l.labels.clone(),
                    },
                    Some(LabelModifier::Exclude(l)) => Grouping {
                        without: true,
                        labels: l.labels.clone(),
                    },
                    None => Grouping {
                        without: false,
                        labels: Vec::new(),
                    },
                };
                Node::Aggregate(Box::new(AggregateNode {
                    op,
                    expr: self.node(&a.expr)?,
                    param,
                    grouping,
                    param_position: positions.into_iter().next().unwrap_or_default(),
                }))
            }
            Expr::Call(call) => functions::plan_call(self, call)?,
        })
    }

    /// Claims the next call site of `name` in the text and returns where its arguments start
    /// (`line:col`, empty when unknown). Calls are planned in textual order, so the first
    /// unclaimed site with the name is this call's.
    pub(crate) fn claim_call(&mut self, name: &str) -> Vec<String> {
        let found = self.sites[self.next_site..]
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name));
        match found {
            Some(i) => {
                let site = self.next_site + i;
                self.next_site = site + 1;
                self.sites[site]
                    .args
                    .iter()
                    .map(|&offset| line_col(&self.query, offset))
                    .collect()
            }
            None => Vec::new(),
        }
    }

    /// Plans a subquery's body at the steps Prometheus evaluates it at: from the first multiple
    /// of the step after the earliest window start (windows are left-open) to the latest window
    /// end. With `@`, every enclosing step shares the one window ending at the `@` time.
    fn subquery(&mut self, sq: &SubqueryExpr) -> Result<SubqueryNode> {
        let range_ms = duration_ms(sq.range);
        let step_ms = match sq.step.map(duration_ms) {
            Some(step) if step > 0 => step,
            _ => self.default_subquery_step_ms,
        };
        let offset_ms = offset_ms(sq.offset.as_ref());
        let at = self.resolve_at(sq.at.as_ref());
        let outer = self.steps;
        let window_end = |t: TimestampMs| at.unwrap_or(t).saturating_sub(offset_ms);
        let steps = if outer.count == 0 {
            Steps::empty()
        } else {
            let earliest = window_end(outer.start).saturating_sub(range_ms);
            let mut first = step_ms * (earliest / step_ms);
            if first <= earliest {
                first += step_ms;
            }
            Steps::aligned(first, window_end(outer.end), step_ms)
        };
        self.steps = steps;
        let inner = self.node(&sq.expr);
        self.steps = outer;
        Ok(SubqueryNode {
            inner: inner?,
            steps,
            range_ms,
            offset_ms,
            at,
        })
    }

    /// The value of `start()`, `end()`, `range()` or `step()` (seconds): constants of the query,
    /// folded at plan time as Prometheus folds them, so inside a subquery they are still the
    /// query's own.
    pub(crate) fn query_constant(&self, name: &str) -> Option<f64> {
        let seconds = |ms: i64| ms as f64 / 1000.0;
        Some(match name {
            "start" => seconds(self.query_start),
            "end" => seconds(self.query_end),
            "range" => seconds(self.query_end - self.query_start),
            "step" => seconds(self.query_step_ms),
            _ => return None,
        })
    }

    pub(crate) fn resolve_at(&self, at: Option<&AtModifier>) -> Option<TimestampMs> {
        at.map(|at| match at {
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
            AtModifier::At(t) => system_time_ms(*t),
        })
    }

    /// A selector of its own for a function that reads series besides its arguments (`info`'s
    /// info series): instant, its windows placed by `offset_ms` and `at`.
    pub(crate) fn extra_selector(&mut self, matchers: Vec<Matcher>, offset_ms: i64, at: Option<TimestampMs>) -> usize {
        let mut selector = Selector {
            matcher_sets: vec![matchers],
            offset_ms,
            at,
            ..Selector::default()
        };
        selector.fetch = selector.fetch_range(&self.steps, self.lookback_ms);
        selector.newest_only = selector.range_ms == 0 && (selector.at.is_some() || self.steps.count == 1);
        self.selectors.push(selector);
        self.selectors.len() - 1
    }

    fn selector(&mut self, vs: &VectorSelector, range: Duration) -> Result<usize> {
        let mut base = vs
            .matchers
            .matchers
            .iter()
            .map(convert_matcher)
            .collect::<Result<Vec<_>>>()?;
        if let Some(name) = &vs.name {
            base.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        let matcher_sets = if vs.matchers.or_matchers.is_empty() {
            vec![base]
        } else {
            vs.matchers
                .or_matchers
                .iter()
                .map(|set| {
                    let mut all = set.iter().map(convert_matcher).collect::<Result<Vec<_>>>()?;
                    all.extend(base.iter().cloned());
                    Ok(all)
                })
                .collect::<Result<Vec<_>>>()?
        };
        let mut selector = Selector {
            matcher_sets,
            offset_ms: offset_ms(vs.offset.as_ref()),
            at: self.resolve_at(vs.at.as_ref()),
            range_ms: duration_ms(range),
            fetch: None,
            tier: None,
            edges: false,
            one_window: false,
            newest_only: false,
            bucket_fields: BucketFields::All,
        };
        selector.fetch = selector.fetch_range(&self.steps, self.lookback_ms);
        selector.newest_only = selector.range_ms == 0 && (selector.at.is_some() || self.steps.count == 1);
        self.selectors.push(selector);
        Ok(self.selectors.len() - 1)
    }
}

pub(crate) fn offset_ms(offset: Option<&Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
    }
}

/// The value of a string argument (parentheses allowed, as in Prometheus).
pub(crate) fn string_arg(expr: &Expr) -> Result<String> {
    match unwrap_parens(expr) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        other => Err(Error::BadData(format!("expected a string literal, got {other}"))),
    }
}

pub(crate) fn unwrap_parens(mut expr: &Expr) -> &Expr {
    while let Expr::Paren(p) = expr {
        expr = &p.expr;
    }
    expr
}

/// Converts a parsed matcher into the storage matcher (same Prometheus semantics: anchored
/// regexes where `.` matches newlines).
pub(crate) fn convert_matcher(m: &ParserMatcher) -> Result<Matcher> {
    let op = match m.op {
        ParserOp::Equal => MatchOp::Equal,
        ParserOp::NotEqual => MatchOp::NotEqual,
        ParserOp::Re(_) => MatchOp::RegexMatch,
        ParserOp::NotRe(_) => MatchOp::RegexNoMatch,
    };
    Matcher::new(op, m.name.clone(), m.value.clone())
        // Go accepts a literal `{` that does not start a repetition; Rust's regex does not.
        .or_else(|_| Matcher::new(op, m.name.clone(), escape_literal_braces(&m.value)))
        .map_err(|e| Error::BadData(format!("invalid regular expression {:?}: {e}", m.value)))
}

/// Escapes every `{` that does not open a valid `{n}`, `{n,}` or `{n,m}` repetition.
fn escape_literal_braces(re: &str) -> String {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(c);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '{' && !opens_repetition(&chars[i + 1..]) {
            out.push('\\');
        }
        out.push(c);
        i += 1;
    }
    out
}

fn opens_repetition(rest: &[char]) -> bool {
    let Some(close) = rest.iter().position(|&c| c == '}') else {
        return false;
    };
    let body: String = rest[..close].iter().collect();
    let mut parts = body.splitn(2, ',');
    let min = parts.next().unwrap_or("");
    let max = parts.next();
    !min.is_empty()
        && min.chars().all(|c| c.is_ascii_digit())
        && max.is_none_or(|m| m.chars().all(|c| c.is_ascii_digit()))
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn system_time_ms(t: SystemTime) -> TimestampMs {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(d),
        Err(e) => -duration_ms(e.duration()),
    }
}

fn binary_op(id: u16) -> Result<BinOp> {
    Ok(match id {
        T_ADD => BinOp::Add,
        T_SUB => BinOp::Sub,
        T_MUL => BinOp::Mul,
        T_DIV => BinOp::Div,
        T_MOD => BinOp::Mod,
        T_POW => BinOp::Pow,
        T_ATAN2 => BinOp::Atan2,
        T_EQLC => BinOp::Eq,
        T_NEQ => BinOp::Ne,
        T_GTR => BinOp::Gt,
        T_LSS => BinOp::Lt,
        T_GTE => BinOp::Ge,
        T_LTE => BinOp::Le,
        T_LAND => BinOp::And,
        T_LOR => BinOp::Or,
        T_LUNLESS => BinOp::Unless,
        other => return Err(Error::Internal(format!("unknown binary operator token {other}"))),
    })
}

fn aggregate_op(id: u16, name: &str) -> Result<AggOp> {
    Ok(match id {
        T_SUM => AggOp::Sum,
        T_AVG => AggOp::Avg,
        T_MIN => AggOp::Min,
        T_MAX => AggOp::Max,
        T_COUNT => AggOp::Count,
        T_GROUP => AggOp::Group,
        T_STDDEV => AggOp::Stddev,
        T_STDVAR => AggOp::Stdvar,
        T_TOPK => AggOp::Topk,
        T_BOTTOMK => AggOp::Bottomk,
        T_QUANTILE => AggOp::Quantile,
        T_COUNT_VALUES => AggOp::CountValues,
        T_LIMITK => AggOp::Limitk,
        T_LIMIT_RATIO => AggOp::LimitRatio,
        _ => return Err(Error::unsupported(format!("the {name} aggregation"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_at(q: &str, steps: Steps) -> Result<Plan> {
        let ctx = PlanContext {
            query: q,
            steps,
            lookback_ms: 300_000,
            default_subquery_step_ms: 60_000,
            tiers: &[],
        };
        plan(&promql_parser::parser::parse(q).unwrap(), ctx)
    }

    #[test]
    fn selectors_resolve_offset_at_and_range() {
        let steps = Steps::range(0, 1_000_000, 1000);
        let p = plan_at(r#"rate(foo{a=~"x.*"}[5m] offset 1m @ 100)"#, steps).unwrap();
        let s = &p.selectors[0];
        assert_eq!((s.range_ms, s.offset_ms, s.at), (300_000, 60_000, Some(100_000)));
        assert_eq!(s.matcher_sets[0].len(), 2);
        // @ pins every step to 100s, minus the 1m offset; the window is (40s - 5m, 40s].
        assert_eq!(s.fetch, Some(TimeRange::new(40_000 - 300_000 + 1, 40_000)));
    }

    #[test]
    fn instant_selectors_fetch_the_lookback_window() {
        let steps = Steps::range(600_000, 900_000, 15_000);
        let p = plan_at("foo offset -1m", steps).unwrap();
        assert_eq!(p.selectors[0].fetch, Some(TimeRange::new(360_001, 960_000)));
        let p = plan_at("foo @ end()", steps).unwrap();
        assert_eq!(p.selectors[0].fetch, Some(TimeRange::new(600_001, 900_000)));
        let p = plan_at("foo @ start()", steps).unwrap();
        assert_eq!(p.selectors[0].at, Some(600_000));
    }

    #[test]
    fn subqueries_are_evaluated_at_aligned_steps_inside_left_open_windows() {
        // Instant query at 1000.5s: window (400.5s, 1000.5s]; steps at multiples of 60s.
        let p = plan_at("max_over_time(foo[10m:1m])", Steps::instant(1_000_500)).unwrap();
        let Node::Call(call) = &p.root else {
            panic!("{:?}", p.root)
        };
        let Node::Subquery(sq) = &call.args[0] else { panic!() };
        assert_eq!((sq.steps.start, sq.steps.end, sq.steps.count), (420_000, 960_000, 10));
        // The inner selector reads the lookback window before the first inner step.
        assert_eq!(p.selectors[0].fetch, Some(TimeRange::new(120_001, 960_000)));
        // A window starting exactly on a step excludes it (left-open); the default step is 1m.
        let p = plan_at("foo[2m:]", Steps::instant(600_000)).unwrap();
        let Node::Subquery(sq) = &p.root else { panic!() };
        assert_eq!((sq.steps.start, sq.steps.count), (540_000, 2));
        // @ and offset move the one window every step shares.
        let p = plan_at("foo[1m:30s] @ 300 offset 1m", Steps::range(0, 10_000_000, 1000)).unwrap();
        let Node::Subquery(sq) = &p.root else { panic!() };
        assert_eq!((sq.steps.start, sq.steps.end, sq.steps.count), (210_000, 240_000, 2));
        // A window holding no step evaluates nothing and reads nothing.
        let p = plan_at("foo[10s:1m]", Steps::instant(90_000)).unwrap();
        assert_eq!(p.selectors[0].fetch, None);
    }

    #[test]
    fn instant_selectors_at_one_time_read_only_the_newest_sample() {
        let newest = |q: &str, steps: Steps| -> Vec<bool> {
            plan_at(q, steps)
                .unwrap()
                .selectors
                .iter()
                .map(|s| s.newest_only)
                .collect()
        };
        let range = Steps::range(600_000, 900_000, 15_000);
        assert_eq!(newest("sum by (a) (foo) / bar", Steps::instant(600_000)), [true, true]);
        assert_eq!(newest("foo", range), [false], "several steps use several samples");
        assert_eq!(newest("foo @ 100 + bar", range), [true, false]);
        assert_eq!(newest("rate(foo[5m])", Steps::instant(600_000)), [false]);
        assert_eq!(newest("max_over_time(foo[10m:1m])", Steps::instant(600_000)), [false]);
    }

    #[test]
    fn bucket_reads_ask_for_the_fields_their_function_reads() {
        let fields = |q: &str| -> Vec<(Option<Resolution>, BucketFields)> {
            let ctx = PlanContext {
                query: q,
                steps: Steps::range(0, 30 * 86_400_000, 3_600_000),
                lookback_ms: 300_000,
                default_subquery_step_ms: 60_000,
                tiers: &[(Resolution::OneHour, 3_600_000)],
            };
            plan(&promql_parser::parser::parse(q).unwrap(), ctx)
                .unwrap()
                .selectors
                .iter()
                .map(|s| (s.tier, s.bucket_fields))
                .collect()
        };
        let hourly = Some(Resolution::OneHour);
        assert_eq!(
            fields("sum(rate(a[1d])) / sum(increase(b[1d]))"),
            [(hourly, BucketFields::Change), (hourly, BucketFields::Change)]
        );
        for q in [
            "sum_over_time(a[1d])",
            "avg_over_time(a[1d])",
            "min_over_time(a[1d])",
            "max_over_time(a[1d])",
            "count_over_time(a[1d])",
        ] {
            assert_eq!(fields(q), [(hourly, BucketFields::All)], "{q}");
        }
        assert_eq!(fields("rate(a[90m])"), [(None, BucketFields::All)], "raw: no hint");
    }

    #[test]
    fn unsupported_features_are_named() {
        let err = plan_at("start_timestamp(foo)", Steps::instant(0)).unwrap_err();
        assert!(err.to_string().contains("start_timestamp()"), "{err}");
    }

    #[test]
    fn calls_claim_their_positions_in_text_order() {
        let p = plan_at("sum(rate(a[1m])) + quantile(2, rate(b[1m]))", Steps::instant(0)).unwrap();
        let Node::Binary(b) = &p.root else { panic!() };
        let Node::Aggregate(q) = &b.rhs else { panic!() };
        assert_eq!(q.param_position, "1:29");
        let Node::Call(rate) = &q.expr else { panic!() };
        assert_eq!(rate.positions, vec!["1:37".to_string()]);
    }

    #[test]
    fn go_style_literal_braces_are_accepted() {
        assert_eq!(escape_literal_braces("a{b}c"), r"a\{b}c");
        assert_eq!(escape_literal_braces("a{2,3}"), "a{2,3}");
        assert_eq!(escape_literal_braces(r"\{x"), r"\{x");
    }
}
