//! Metric expressions (range and vector aggregations, binary operators, literals) and the
//! checks Loki makes once a query has parsed.

use tributary_storage::types::Matcher;

use super::lexer::{Tok, positioned};
use super::{Parser, parse_error};
use crate::error::Result;
use crate::logql::ast::*;

impl Parser<'_> {
    pub(super) fn metric_expr(&mut self, min_prec: u8) -> Result<MetricExpr> {
        let mut lhs = self.metric_primary()?;
        loop {
            let op = match self.peek() {
                Tok::Add => BinOp::Add,
                Tok::Sub => BinOp::Sub,
                Tok::Mul => BinOp::Mul,
                Tok::Div => BinOp::Div,
                Tok::Mod => BinOp::Mod,
                Tok::Pow => BinOp::Pow,
                Tok::EqEq => BinOp::Eq,
                Tok::Neq => BinOp::Ne,
                Tok::Gt => BinOp::Gt,
                Tok::Ge => BinOp::Ge,
                Tok::Lt => BinOp::Lt,
                Tok::Le => BinOp::Le,
                Tok::Ident(w) if w == "and" => BinOp::And,
                Tok::Ident(w) if w == "or" => BinOp::Or,
                Tok::Ident(w) if w == "unless" => BinOp::Unless,
                _ => break,
            };
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.next();
            let return_bool = if self.is_ident("bool") {
                if !op.is_comparison() {
                    return Err(self.unexpected(None));
                }
                self.next();
                true
            } else {
                false
            };
            let matching = if self.is_ident("on") || self.is_ident("ignoring") {
                let on = self.is_ident("on");
                self.next();
                Some((on, self.label_list()?))
            } else {
                None
            };
            // `^` is right-associative, everything else left-associative.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.metric_expr(next_min)?;
            lhs = MetricExpr::Binary(Box::new(BinaryExpr {
                op,
                return_bool,
                matching,
                lhs,
                rhs,
            }));
        }
        Ok(lhs)
    }

    fn label_list(&mut self) -> Result<Vec<String>> {
        self.expect(Tok::LParen)?;
        let mut out = Vec::new();
        while self.peek() != &Tok::RParen {
            out.push(self.ident()?);
            if self.peek() == &Tok::Comma {
                self.next();
            } else if self.peek() != &Tok::RParen {
                return Err(self.unexpected(Some(", or )")));
            }
        }
        self.next();
        Ok(out)
    }

    fn grouping(&mut self) -> Result<Option<Grouping>> {
        let without = match self.peek() {
            Tok::Ident(w) if w == "by" => false,
            Tok::Ident(w) if w == "without" => true,
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(Grouping {
            without,
            labels: self.label_list()?,
        }))
    }

    fn metric_primary(&mut self) -> Result<MetricExpr> {
        match self.peek().clone() {
            Tok::LParen => {
                self.next();
                let inner = self.metric_expr(0)?;
                self.expect(Tok::RParen)?;
                Ok(MetricExpr::Paren(Box::new(inner)))
            }
            Tok::Num(..) | Tok::Sub | Tok::Add => {
                if self.peek() == &Tok::Add {
                    self.next();
                }
                Ok(MetricExpr::Number(self.number()?))
            }
            Tok::Ident(w) => {
                if let Some(func) = RangeFn::from_name(&w) {
                    self.next();
                    return self.range_agg(func);
                }
                if let Some(op) = AggOp::from_name(&w) {
                    self.next();
                    return self.vector_agg(op);
                }
                if w == "vector" && self.peek_at(1) == &Tok::LParen {
                    self.next();
                    self.next();
                    let v = self.number()?;
                    self.expect(Tok::RParen)?;
                    return Ok(MetricExpr::VectorLiteral(v));
                }
                if w.eq_ignore_ascii_case("inf") || w.eq_ignore_ascii_case("nan") {
                    return Ok(MetricExpr::Number(self.number()?));
                }
                Err(self.unexpected(None))
            }
            Tok::LBrace => Err(positioned(
                self.src,
                self.offset(),
                "syntax error: unexpected {, a log query cannot be combined with a metric query",
            )),
            _ => Err(self.unexpected(None)),
        }
    }

    fn range_agg(&mut self, func: RangeFn) -> Result<MetricExpr> {
        self.expect(Tok::LParen)?;
        let param = if func == RangeFn::QuantileOverTime {
            let v = self.number()?;
            self.expect(Tok::Comma)?;
            Some(v)
        } else {
            None
        };
        let (log, early_range, unwrap) = self.log_expr(true)?;
        let range = match early_range {
            Some(r) => r,
            None => self.range()?,
        };
        let offset = if self.is_ident("offset") {
            self.next();
            self.duration()?
        } else {
            0
        };
        self.expect(Tok::RParen)?;
        let grouping = self.grouping()?;
        Ok(MetricExpr::Range(RangeAgg {
            func,
            param,
            log,
            unwrap,
            range,
            offset,
            grouping,
        }))
    }

    fn vector_agg(&mut self, op: AggOp) -> Result<MetricExpr> {
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen)?;
        let param = if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            let v = self.number()?;
            self.expect(Tok::Comma)?;
            Some(v)
        } else {
            None
        };
        let expr = self.metric_expr(0)?;
        self.expect(Tok::RParen)?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        Ok(MetricExpr::Vector(VectorAgg {
            op,
            param,
            grouping,
            expr: Box::new(expr),
        }))
    }
}

pub(super) fn validate(expr: &Expr) -> Result<()> {
    match expr {
        Expr::Log(l) => validate_selector(&l.matchers),
        Expr::Metric(m) => validate_metric(m),
    }
}

/// Loki refuses selectors that would match every stream.
fn validate_selector(matchers: &[Matcher]) -> Result<()> {
    if matchers.iter().any(|m| !m.matches("")) {
        return Ok(());
    }
    Err(parse_error(
        "queries require at least one regexp or equality matcher that does not have an empty-compatible value. \
         For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
    ))
}

fn validate_metric(expr: &MetricExpr) -> Result<()> {
    match expr {
        MetricExpr::Number(_) | MetricExpr::VectorLiteral(_) => Ok(()),
        MetricExpr::Paren(inner) => validate_metric(inner),
        MetricExpr::Binary(b) => {
            validate_metric(&b.lhs)?;
            validate_metric(&b.rhs)?;
            let scalar = |e: &MetricExpr| is_scalar(e);
            if b.op.is_set() && (scalar(&b.lhs) || scalar(&b.rhs)) {
                return Err(parse_error(format!(
                    "unexpected literal for right leg of logical/set binary operation ({}): {}",
                    b.op.as_str(),
                    b.rhs
                )));
            }
            if b.op.is_comparison() && !b.return_bool && scalar(&b.lhs) && scalar(&b.rhs) {
                return Err(parse_error("comparisons between scalars must use BOOL modifier"));
            }
            Ok(())
        }
        MetricExpr::Vector(v) => {
            if let Some(k) = v.param
                && (k.fract() != 0.0 || k < 1.0)
            {
                return Err(parse_error(format!(
                    "invalid parameter for {}: {k}, must be a positive integer",
                    v.op.as_str()
                )));
            }
            validate_metric(&v.expr)
        }
        MetricExpr::Range(r) => {
            validate_selector(&r.log.matchers)?;
            if r.func.needs_unwrap() && r.unwrap.is_none() {
                return Err(parse_error(format!(
                    "invalid aggregation {} without unwrap",
                    r.func.as_str()
                )));
            }
            if r.unwrap.is_some() && r.func.forbids_unwrap() {
                return Err(parse_error(format!(
                    "invalid aggregation {} with unwrap",
                    r.func.as_str()
                )));
            }
            if r.range <= 0 {
                return Err(parse_error("range must be positive"));
            }
            Ok(())
        }
    }
}

/// True for expressions that evaluate to a scalar (number literals and arithmetic on them).
pub(crate) fn is_scalar(e: &MetricExpr) -> bool {
    match e {
        MetricExpr::Number(_) => true,
        MetricExpr::Paren(inner) => is_scalar(inner),
        MetricExpr::Binary(b) => is_scalar(&b.lhs) && is_scalar(&b.rhs),
        _ => false,
    }
}
