//! Alert label and annotation templates: the part of Go's `text/template` (with Prometheus's
//! functions) that alerting rules use.
//!
//! # Contract
//!
//! A template is expanded as Prometheus expands it: the data is `.Labels`, `.ExternalLabels`,
//! `.ExternalURL` and `.Value`, and the variables `$labels`, `$externalLabels`, `$externalURL`,
//! `$value` (and `$`, the data) are defined before the first action, as if Prometheus's prefix
//! `{{$labels := .Labels}}...` were there (positions in messages are those of the user's text).
//! A missing label expands to the empty string (Go's `missingkey=zero` on a string map).
//!
//! Supported: text, `{{ }}` actions with `{{-`/`-}}` trimming, comments, literals (strings,
//! raw strings, numbers, characters, `true false nil`), fields and variables with field chains,
//! `:=`/`=`, pipelines, parenthesised pipelines, `if`/`else if`/`else`, `range` (over a map, with
//! `$k, $v :=`, `else`, `break`, `continue`), `with`/`else with`; Go's `and or not len index
//! eq ne lt le gt ge print printf println html urlquery` (`printf` with Go's verbs and flags, see
//! `template/printf.rs`); Prometheus's `humanize humanize1024 humanizeDuration
//! humanizePercentage humanizeTimestamp toTime title toUpper toLower reReplaceAll match
//! stripPort stripDomain parseDuration graphLink tableLink pathPrefix externalURL safeHtml`.
//!
//! Refused when the template is checked, naming what: `query` and the functions that only read
//! its results (`first label value strvalue sortByLabel`), the other Prometheus functions this
//! ruler cannot honour (`args tmpl now toDuration`), Go's `define template block call slice js`,
//! methods on values (`(toTime 1).Format`), and any unknown function (`function "x" not
//! defined`, as Go says).
//!
//! Errors read like Prometheus's, with Go's `line:column` (the column a 0-based byte offset):
//! `error parsing template: 1:0: unclosed action`, `error executing template: 1:3: at
//! <humanize "one">: error calling humanize: ...`. Prometheus puts `<error expanding template:
//! ...>` in an annotation whose expansion fails; that is the caller's choice.
//!
//! Bounds (a rule file must not take the ruler down): 100 levels of nesting (refused by
//! `check`), a million executed nodes and 1 MiB of output per expansion.

mod functions;
mod lex;
mod printf;

use std::collections::BTreeMap;

use lex::{Lex, Segment, Tok, segments};
use printf::print_value;

/// What a template reads: the alert's labels and value, and the server's external labels and URL.
pub(crate) struct TemplateData<'a> {
    pub(crate) labels: &'a BTreeMap<String, String>,
    pub(crate) value: f64,
    pub(crate) external_labels: &'a BTreeMap<String, String>,
    pub(crate) external_url: &'a str,
}

/// Parses `text` without expanding it (load-time check); Err is a readable reason (with the position).
pub(crate) fn check(text: &str) -> Result<(), String> {
    parse(text)
        .map(|_| ())
        .map_err(|f| format!("error parsing template: {}", f.render(text)))
}

/// Expands `text` as Prometheus expands alert labels and annotations.
pub(crate) fn expand(text: &str, data: &TemplateData<'_>) -> Result<String, String> {
    let nodes = parse(text).map_err(|f| format!("error parsing template: {}", f.render(text)))?;
    let mut exec = Exec {
        data,
        vars: PREDEFINED
            .iter()
            .map(|v| (v.to_string(), Exec::predefined(data, v)))
            .collect(),
        out: String::new(),
        steps: 0,
    };
    exec.list(&nodes, &Value::Data)
        .map_err(|f| format!("error executing template: {}", f.render(text)))?;
    Ok(exec.out)
}

/// The deepest nesting of control structures and parentheses a template may have.
const MAX_DEPTH: usize = 100;
/// The most nodes one expansion executes, and the most bytes it writes: nested `range`s
/// multiply, and an alert's evaluation must not hang or hold gigabytes on one template.
const MAX_STEPS: usize = 1_000_000;
const MAX_OUTPUT: usize = 1 << 20;

/// Prometheus's prefix defines these before the user's text.
const PREDEFINED: [&str; 5] = ["$", "$labels", "$externalLabels", "$externalURL", "$value"];

/// The position of a fault that belongs to the whole template.
const NOWHERE: usize = usize::MAX;

/// An error at a byte offset of the template (`1:5: ...` when rendered).
#[derive(Debug)]
struct Fault {
    pos: usize,
    /// The command being executed (Go's `at <...>`), as its source text.
    at: Option<(usize, usize)>,
    msg: String,
}

impl Fault {
    fn new(pos: usize, msg: impl Into<String>) -> Self {
        Fault {
            pos,
            at: None,
            msg: msg.into(),
        }
    }

    fn render(&self, text: &str) -> String {
        if self.pos == NOWHERE {
            return self.msg.clone();
        }
        let before = &text[..self.pos.min(text.len())];
        let line = before.matches('\n').count() + 1;
        // Go's `line:column`, the column a 0-based byte offset in the line.
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
        match self.at {
            Some((s, e)) => format!("{line}:{col}: at <{}>: {}", text[s..e].trim(), self.msg),
            None => format!("{line}:{col}: {}", self.msg),
        }
    }
}

/// A value during execution (Go's dynamic types, as far as alert templates meet them).
#[derive(Clone, Debug)]
enum Value<'d> {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Map(&'d BTreeMap<String, String>),
    /// The template's data (`.`/`$` at the top).
    Data,
    /// A `time.Time` (from `toTime`), as Unix milliseconds, UTC.
    Time(i64),
    Nil,
}

impl Value<'_> {
    /// Go's `text/template` truth: the zero value and empty things are false.
    fn truth(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Map(m) => !m.is_empty(),
            Value::Data | Value::Time(_) => true,
            Value::Nil => false,
        }
    }

    /// The Go type name messages use.
    fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Map(_) => "map[string]string",
            Value::Data => "template.tmplData",
            Value::Time(_) => "time.Time",
            Value::Nil => "<nil>",
        }
    }
}

// ---- Parsing --------------------------------------------------------------------------------

#[derive(Debug)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Break,
    Continue,
}

#[derive(Debug)]
struct Branch {
    pipe: Pipe,
    body: Vec<Node>,
    other: Vec<Node>,
}

#[derive(Debug)]
struct Pipe {
    pos: usize,
    decl: Vec<String>,
    /// `=` rather than `:=`.
    assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug)]
struct Cmd {
    span: (usize, usize),
    args: Vec<Operand>,
}

/// One argument of a command.
#[derive(Debug)]
enum Operand {
    /// `.a.b` of the dot (`.` itself when empty).
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// A function: called with the command's other arguments, or with none as an argument.
    Func(String),
    /// `(pipeline).a.b`.
    Sub(Box<Pipe>, Vec<String>),
}

/// How a list of nodes ended.
enum End {
    Eof,
    Close(usize),
    /// `{{else ...}}` with the tokens after `else`.
    Else(usize, Vec<Lex>),
}

struct Parser {
    segs: std::vec::IntoIter<Segment>,
    vars: Vec<String>,
    ranges: usize,
    /// Open control structures and parentheses: parsing and executing recurse once per level.
    depth: usize,
    len: usize,
}

fn parse(text: &str) -> Result<Vec<Node>, Fault> {
    let mut p = Parser {
        segs: segments(text)?.into_iter(),
        vars: PREDEFINED.iter().map(|v| v.to_string()).collect(),
        ranges: 0,
        depth: 0,
        len: text.len(),
    };
    match p.list()? {
        (nodes, End::Eof) => Ok(nodes),
        (_, End::Close(pos)) => Err(Fault::new(pos, "unexpected {{end}}")),
        (_, End::Else(pos, _)) => Err(Fault::new(pos, "unexpected {{else}}")),
    }
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, End), Fault> {
        let mut nodes = Vec::new();
        while let Some(seg) = self.segs.next() {
            let (pos, mut toks) = match seg {
                Segment::Text(t) if t.is_empty() => continue,
                Segment::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Segment::Action(pos, toks) => (pos, toks),
            };
            let keyword = match toks.first() {
                Some(Lex { tok: Tok::Ident(k), .. }) => k.clone(),
                _ => String::new(),
            };
            let bare = |toks: &[Lex], what: &str| {
                if let Some(extra) = toks.get(1) {
                    return Err(Fault::new(extra.at, format!("unexpected {:?} in {what}", extra.tok)));
                }
                Ok(())
            };
            match keyword.as_str() {
                "end" => {
                    bare(&toks, "end")?;
                    return Ok((nodes, End::Close(pos)));
                }
                "else" => {
                    toks.remove(0);
                    return Ok((nodes, End::Else(pos, toks)));
                }
                "if" | "range" | "with" => {
                    toks.remove(0);
                    nodes.push(self.control(&keyword, pos, toks)?);
                }
                "break" | "continue" => {
                    bare(&toks, &keyword)?;
                    if self.ranges == 0 {
                        return Err(Fault::new(pos, format!("{{{{{keyword}}}}} outside {{{{range}}}}")));
                    }
                    nodes.push(if keyword == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                "define" | "template" | "block" => {
                    return Err(Fault::new(
                        pos,
                        format!("{{{{{keyword}}}}} is not supported in alert templates"),
                    ));
                }
                _ => nodes.push(Node::Action(self.pipe(pos, toks, false)?)),
            }
        }
        Ok((nodes, End::Eof))
    }

    /// One level deeper, refused past [`MAX_DEPTH`] (a deep template would overflow the stack).
    fn enter(&mut self, pos: usize) -> Result<(), Fault> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Fault::new(
                pos,
                format!("template nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// `if`/`range`/`with` after its keyword, through its `{{end}}` (an `else if` shares it).
    fn control(&mut self, kind: &str, pos: usize, toks: Vec<Lex>) -> Result<Node, Fault> {
        self.enter(pos)?;
        let scope = self.vars.len();
        let pipe = self.pipe(pos, toks, kind == "range")?;
        self.ranges += usize::from(kind == "range");
        let body = self.list();
        self.ranges -= usize::from(kind == "range");
        let (body, end) = body?;
        let other = match end {
            End::Eof => {
                return Err(Fault::new(
                    self.len,
                    format!("unexpected EOF: {{{{{kind}}}}} without {{{{end}}}}"),
                ));
            }
            End::Close(_) => Vec::new(),
            End::Else(at, rest) => match rest.first() {
                None => match self.list()? {
                    (other, End::Close(_)) => other,
                    (_, End::Else(p, _)) => return Err(Fault::new(p, "expected end; found {{else}}")),
                    (_, End::Eof) => return Err(Fault::new(self.len, "unexpected EOF: {{else}} without {{end}}")),
                },
                Some(Lex { tok: Tok::Ident(k), .. }) if k == kind && kind != "range" => {
                    let k = k.clone();
                    vec![self.control(&k, at, rest.into_iter().skip(1).collect())?]
                }
                Some(l) => return Err(Fault::new(l.at, "unexpected token after {{else}}")),
            },
        };
        self.vars.truncate(scope);
        self.depth -= 1;
        let branch = Box::new(Branch { pipe, body, other });
        Ok(match kind {
            "if" => Node::If(branch),
            "range" => Node::Range(branch),
            _ => Node::With(branch),
        })
    }

    /// A pipeline, with its declarations (two only for a `range`).
    fn pipe(&mut self, pos: usize, toks: Vec<Lex>, range: bool) -> Result<Pipe, Fault> {
        let mut toks = toks.into_iter().peekable();
        let mut pipe = Pipe {
            pos,
            decl: Vec::new(),
            assign: false,
            cmds: Vec::new(),
        };
        // `$x :=`, `$x =`, `$k, $v :=`.
        let all: Vec<_> = toks.clone().collect();
        let names: Vec<_> = all
            .iter()
            .take_while(|l| matches!(&l.tok, Tok::Var(_, c) if c.is_empty()) || l.tok == Tok::Comma)
            .collect();
        if let Some(op) = all
            .get(names.len())
            .map(|l| &l.tok)
            .filter(|t| matches!(t, Tok::Declare | Tok::Assign))
        {
            for l in &names {
                if let Tok::Var(n, _) = &l.tok {
                    if *op == Tok::Assign && !self.vars.contains(n) {
                        return Err(Fault::new(l.at, format!("undefined variable {n:?}")));
                    }
                    pipe.decl.push(n.clone());
                }
            }
            if pipe.decl.len() > 1 + usize::from(range) {
                return Err(Fault::new(pos, "too many declarations in command"));
            }
            pipe.assign = *op == Tok::Assign;
            for _ in 0..=names.len() {
                toks.next();
            }
        }
        self.commands(&mut toks, &mut pipe)?;
        if !pipe.assign {
            self.vars.extend(pipe.decl.iter().cloned());
        }
        if pipe.cmds.is_empty() {
            return Err(Fault::new(pos, "missing value for command"));
        }
        Ok(pipe)
    }

    fn commands(
        &mut self,
        toks: &mut std::iter::Peekable<std::vec::IntoIter<Lex>>,
        pipe: &mut Pipe,
    ) -> Result<(), Fault> {
        let mut cmd = Cmd {
            span: (pipe.pos, pipe.pos),
            args: Vec::new(),
        };
        while let Some(Lex { at: p, end, tok }) = toks.next() {
            if cmd.args.is_empty() {
                cmd.span.0 = p;
            }
            cmd.span.1 = end;
            let arg = match tok {
                Tok::Close => return Err(Fault::new(p, "unexpected right paren")),
                Tok::Pipe => {
                    if cmd.args.is_empty() {
                        return Err(Fault::new(p, "missing command"));
                    }
                    pipe.cmds.push(std::mem::replace(
                        &mut cmd,
                        Cmd {
                            span: (p + 1, p + 1),
                            args: Vec::new(),
                        },
                    ));
                    continue;
                }
                Tok::Open => {
                    let mut inner: Vec<Lex> = Vec::new();
                    let mut depth = 1;
                    for l in toks.by_ref() {
                        depth += i32::from(l.tok == Tok::Open) - i32::from(l.tok == Tok::Close);
                        if depth == 0 {
                            cmd.span.1 = l.end;
                            break;
                        }
                        inner.push(l);
                    }
                    if depth != 0 {
                        return Err(Fault::new(p, "unclosed left paren"));
                    }
                    let mut chain = Vec::new();
                    if let Some(Lex {
                        at,
                        end,
                        tok: Tok::Field(c),
                    }) = toks.peek()
                        && *at == cmd.span.1
                    {
                        chain = c.clone();
                        cmd.span.1 = *end;
                        toks.next();
                    }
                    self.enter(p)?;
                    let sub = self.pipe(p, inner, false)?;
                    self.depth -= 1;
                    Operand::Sub(Box::new(sub), chain)
                }
                Tok::Field(c) => Operand::Field(c),
                Tok::Var(n, c) => {
                    if !self.vars.contains(&n) {
                        return Err(Fault::new(p, format!("undefined variable {n:?}")));
                    }
                    Operand::Var(n, c)
                }
                Tok::Str(s) => Operand::Str(s),
                Tok::Int(i) => Operand::Int(i),
                Tok::Float(f) => Operand::Float(f),
                Tok::Ident(name) => match name.as_str() {
                    "true" | "false" => Operand::Bool(name == "true"),
                    "nil" => Operand::Nil,
                    _ => {
                        functions::known_function(&name).map_err(|m| Fault::new(p, m))?;
                        Operand::Func(name)
                    }
                },
                Tok::Comma | Tok::Declare | Tok::Assign => {
                    return Err(Fault::new(p, format!("unexpected {tok:?} in command")));
                }
            };
            cmd.args.push(arg);
        }
        if cmd.args.is_empty() {
            if !pipe.cmds.is_empty() {
                return Err(Fault::new(cmd.span.0, "missing command after |"));
            }
        } else {
            pipe.cmds.push(cmd);
        }
        Ok(())
    }
}

// ---- Execution ------------------------------------------------------------------------------

/// How a list of nodes finished (`break`/`continue` end the innermost `range` iteration).
#[derive(PartialEq)]
enum Flow {
    Next,
    Break,
    Continue,
}

struct Exec<'d, 'a> {
    data: &'d TemplateData<'a>,
    vars: Vec<(String, Value<'d>)>,
    out: String,
    steps: usize,
}

/// An execution error of a function or field, before it knows its position.
type Res<T> = Result<T, String>;

impl<'d, 'a> Exec<'d, 'a> {
    fn predefined(data: &'d TemplateData<'a>, name: &str) -> Value<'d> {
        match name {
            "$labels" => Value::Map(data.labels),
            "$externalLabels" => Value::Map(data.external_labels),
            "$externalURL" => Value::Str(data.external_url.to_string()),
            "$value" => Value::Float(data.value),
            _ => Value::Data,
        }
    }

    fn list(&mut self, nodes: &[Node], dot: &Value<'d>) -> Result<Flow, Fault> {
        for node in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT {
                let what = if self.steps > MAX_STEPS {
                    format!("executes more than {MAX_STEPS} steps")
                } else {
                    format!("writes more than {MAX_OUTPUT} bytes")
                };
                return Err(Fault::new(NOWHERE, format!("the template {what}")));
            }
            let flow = match node {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Next
                }
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if matches!(v, Value::Data) && p.decl.is_empty() {
                        return Err(Fault::new(
                            p.pos,
                            "printing the alert data itself is not supported; print its fields",
                        ));
                    }
                    if p.decl.is_empty() {
                        self.out.push_str(&print_value(&v));
                    }
                    Flow::Next
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
                Node::If(b) | Node::With(b) => {
                    let scope = self.vars.len();
                    let v = self.pipe(&b.pipe, dot)?;
                    let flow = match (v.truth(), matches!(node, Node::With(_))) {
                        (true, true) => self.list(&b.body, &v)?,
                        (true, false) => self.list(&b.body, dot)?,
                        (false, _) => self.list(&b.other, dot)?,
                    };
                    self.vars.truncate(scope);
                    flow
                }
                Node::Range(b) => self.range(b, dot)?,
            };
            if flow != Flow::Next {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    fn range(&mut self, b: &Branch, dot: &Value<'d>) -> Result<Flow, Fault> {
        let scope = self.vars.len();
        // The pipeline's value without its declarations: they take each element.
        let v = self.commands(&b.pipe, dot)?;
        let map = match v {
            Value::Map(m) => m,
            Value::Nil => &BTreeMap::new(),
            other => {
                return Err(Fault::new(
                    b.pipe.pos,
                    format!("range can't iterate over {}", print_value(&other)),
                ));
            }
        };
        for (k, val) in map {
            let elem = Value::Str(val.clone());
            match b.pipe.decl.as_slice() {
                [v] => self.vars.push((v.clone(), elem.clone())),
                [kn, vn] => {
                    self.vars.push((kn.clone(), Value::Str(k.clone())));
                    self.vars.push((vn.clone(), elem.clone()));
                }
                _ => {}
            }
            let flow = self.list(&b.body, &elem)?;
            self.vars.truncate(scope);
            if flow == Flow::Break {
                break;
            }
        }
        if map.is_empty() {
            self.list(&b.other, dot)?;
        }
        self.vars.truncate(scope);
        Ok(Flow::Next)
    }

    /// A pipeline's value, with its declarations or assignments made.
    fn pipe(&mut self, p: &Pipe, dot: &Value<'d>) -> Result<Value<'d>, Fault> {
        let v = self.commands(p, dot)?;
        for name in &p.decl {
            if p.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn commands(&mut self, p: &Pipe, dot: &Value<'d>) -> Result<Value<'d>, Fault> {
        let mut piped = None;
        for cmd in &p.cmds {
            let v = self.command(cmd, dot, piped.take()).map_err(|mut f| {
                // The innermost command that failed names the place (Go's `at <...>`).
                if f.at.is_none() {
                    (f.pos, f.at) = (cmd.span.0, Some(cmd.span));
                }
                f
            })?;
            piped = Some(v);
        }
        Ok(piped.unwrap_or(Value::Nil))
    }

    fn command(&mut self, cmd: &Cmd, dot: &Value<'d>, piped: Option<Value<'d>>) -> Result<Value<'d>, Fault> {
        let unplaced = |msg| Fault { pos: 0, at: None, msg };
        if let Some(Operand::Func(name)) = cmd.args.first() {
            let rest = &cmd.args[1..];
            if name == "and" || name == "or" {
                // Go evaluates these lazily: the first decisive argument is the answer.
                if rest.len() + usize::from(piped.is_some()) == 0 {
                    return Err(unplaced(format!(
                        "wrong number of args for {name}: want at least 1 got 0"
                    )));
                }
                let mut last = Value::Nil;
                for a in rest {
                    last = self.operand(a, dot)?;
                    if last.truth() == (name == "or") {
                        return Ok(last);
                    }
                }
                return Ok(piped.unwrap_or(last));
            }
            let mut args = Vec::with_capacity(rest.len() + 1);
            for a in rest {
                args.push(self.operand(a, dot)?);
            }
            args.extend(piped);
            return functions::call(name, args, self.data.external_url).map_err(unplaced);
        }
        if cmd.args.len() > 1 || piped.is_some() {
            // A method call (`(toTime 1).Format "2006"`) is refused by the field lookup itself.
            self.operand(&cmd.args[0], dot)?;
            return Err(unplaced("can't give argument to non-function".into()));
        }
        self.operand(&cmd.args[0], dot)
    }

    fn operand(&mut self, a: &Operand, dot: &Value<'d>) -> Result<Value<'d>, Fault> {
        let here = |msg| Fault { pos: 0, at: None, msg };
        Ok(match a {
            Operand::Field(chain) => fields(self.data, dot.clone(), chain).map_err(here)?,
            Operand::Var(n, chain) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(m, _)| m == n)
                    .map_or(Value::Nil, |(_, v)| v.clone());
                fields(self.data, v, chain).map_err(here)?
            }
            Operand::Str(s) => Value::Str(s.clone()),
            Operand::Int(i) => Value::Int(*i),
            Operand::Float(f) => Value::Float(*f),
            Operand::Bool(b) => Value::Bool(*b),
            Operand::Nil => return Err(here("nil is not a command".into())),
            Operand::Func(name) => functions::call(name, Vec::new(), self.data.external_url).map_err(here)?,
            Operand::Sub(p, chain) => {
                let v = self.commands(p, dot)?;
                fields(self.data, v, chain).map_err(here)?
            }
        })
    }
}

/// `v.a.b`: fields of the data, keys of a map (missing: the empty string).
fn fields<'d>(data: &'d TemplateData<'_>, mut v: Value<'d>, chain: &[String]) -> Res<Value<'d>> {
    for name in chain {
        v = match (v, name.as_str()) {
            (Value::Data, "Labels") => Value::Map(data.labels),
            (Value::Data, "ExternalLabels") => Value::Map(data.external_labels),
            (Value::Data, "ExternalURL") => Value::Str(data.external_url.to_string()),
            (Value::Data, "Value") => Value::Float(data.value),
            (Value::Data, _) => {
                return Err(format!(
                    "can't evaluate field {name} in the alert's data (it has Labels, ExternalLabels, ExternalURL and Value)"
                ));
            }
            (Value::Map(m), _) => Value::Str(m.get(name).cloned().unwrap_or_default()),
            (Value::Time(_), _) => return Err(format!("template method {name} is not supported")),
            (Value::Nil, _) => return Err(format!("nil pointer evaluating interface {{}}.{name}")),
            (other, _) => return Err(format!("can't evaluate field {name} in type {}", other.type_name())),
        };
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
