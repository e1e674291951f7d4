//! The subset of Go's `text/template` that `| line_format` and `| label_format` use: text,
//! `{{ .label }}`, string and number literals, function calls and `|` pipes, `{{-`/`-}}` trimming.
//! Functions: `ToUpper upper ToLower lower TrimSpace trim title replace default trimPrefix
//! trimSuffix __line__ __timestamp__`. A missing label renders as the empty string, as in Loki.
//!
//! A rendered value is bounded by [`MAX_FORMATTED_BYTES`]: `replace` and chained stages can grow
//! a line geometrically (a one-character pattern replaced by a long text, stage after stage), so
//! every step's size is checked *before* it is built, and a query whose template would pass the
//! bound fails naming it instead of holding gigabytes.

use std::collections::BTreeMap;

/// The most bytes one `line_format` line or `label_format` value may render to: four times
/// Loki's default `max_line_size` (256 KiB), so every real line and its decoration fit.
pub(crate) const MAX_FORMATTED_BYTES: usize = 1 << 20;

/// Why a render stopped: the bound it would have passed.
fn too_large(bytes: usize) -> String {
    format!(
        "a line_format or label_format template renders {bytes} bytes, more than the {MAX_FORMATTED_BYTES} \
         bytes one formatted line or label value may hold"
    )
}

/// Fails when `bytes` would pass [`MAX_FORMATTED_BYTES`].
fn check(bytes: usize) -> Result<(), String> {
    if bytes > MAX_FORMATTED_BYTES {
        return Err(too_large(bytes));
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Template {
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Text(String),
    Action(Vec<Command>),
}

/// One command of a pipeline: a function with arguments, or a single value.
#[derive(Clone, Debug, PartialEq)]
struct Command {
    args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
enum Arg {
    Field(String),
    Literal(String),
    Func(Func),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Upper,
    Lower,
    TrimSpace,
    Title,
    Replace,
    Default,
    TrimPrefix,
    TrimSuffix,
    Line,
    Timestamp,
}

impl Func {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ToUpper" | "upper" => Func::Upper,
            "ToLower" | "lower" => Func::Lower,
            "TrimSpace" | "trim" => Func::TrimSpace,
            "title" | "Title" => Func::Title,
            "replace" => Func::Replace,
            "default" => Func::Default,
            "trimPrefix" | "TrimPrefix" => Func::TrimPrefix,
            "trimSuffix" | "TrimSuffix" => Func::TrimSuffix,
            "__line__" => Func::Line,
            "__timestamp__" => Func::Timestamp,
            _ => return None,
        })
    }

    fn arity(self) -> usize {
        match self {
            Func::Line | Func::Timestamp => 0,
            Func::Upper | Func::Lower | Func::TrimSpace | Func::Title => 1,
            Func::Default | Func::TrimPrefix | Func::TrimSuffix => 2,
            Func::Replace => 3,
        }
    }
}

/// What a template reads: the labels, the line and its timestamp (ns).
pub(crate) struct Scope<'a> {
    pub(crate) labels: &'a BTreeMap<String, String>,
    pub(crate) line: &'a str,
    pub(crate) timestamp: i64,
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut nodes = Vec::new();
        let mut rest = text;
        let mut trim_next = false;
        while let Some(open) = rest.find("{{") {
            let mut before = &rest[..open];
            if trim_next {
                before = before.trim_start();
            }
            let mut inner = &rest[open + 2..];
            if let Some(stripped) = inner.strip_prefix('-')
                && stripped.starts_with(|c: char| c.is_whitespace())
            {
                before = before.trim_end();
                inner = stripped;
            }
            if !before.is_empty() {
                nodes.push(Node::Text(before.to_string()));
            }
            let close = inner
                .find("}}")
                .ok_or_else(|| "template: unclosed action".to_string())?;
            let mut action = &inner[..close];
            trim_next = false;
            if let Some(stripped) = action.strip_suffix('-')
                && stripped.ends_with(|c: char| c.is_whitespace())
            {
                action = stripped;
                trim_next = true;
            }
            nodes.push(Node::Action(parse_action(action)?));
            rest = &inner[close + 2..];
        }
        let tail = if trim_next { rest.trim_start() } else { rest };
        if !tail.is_empty() {
            nodes.push(Node::Text(tail.to_string()));
        }
        Ok(Self { nodes })
    }

    /// The template applied to one entry; `Err` (naming the bound) when the result would pass
    /// [`MAX_FORMATTED_BYTES`].
    pub(crate) fn render(&self, scope: &Scope<'_>) -> Result<String, String> {
        let mut out = String::new();
        for node in &self.nodes {
            let piece = match node {
                Node::Text(t) => std::borrow::Cow::Borrowed(t.as_str()),
                Node::Action(cmds) => {
                    let mut piped: Option<String> = None;
                    for cmd in cmds {
                        piped = Some(eval_command(cmd, piped.take(), scope)?);
                    }
                    std::borrow::Cow::Owned(piped.unwrap_or_default())
                }
            };
            check(out.len() + piece.len())?;
            out.push_str(&piece);
        }
        Ok(out)
    }
}

fn eval_command(cmd: &Command, piped: Option<String>, scope: &Scope<'_>) -> Result<String, String> {
    let value = |arg: &Arg| match arg {
        Arg::Field(name) => Ok(scope.labels.get(name).cloned().unwrap_or_default()),
        Arg::Literal(s) => Ok(s.clone()),
        Arg::Func(f) => call(*f, &[], scope),
    };
    match cmd.args.first() {
        Some(Arg::Func(f)) => {
            let mut args: Vec<String> = cmd.args[1..].iter().map(value).collect::<Result<_, _>>()?;
            args.extend(piped);
            call(*f, &args, scope)
        }
        Some(arg) => value(arg),
        None => Ok(String::new()),
    }
}

fn call(f: Func, args: &[String], scope: &Scope<'_>) -> Result<String, String> {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    Ok(match f {
        Func::Upper => arg(0).to_uppercase(),
        Func::Lower => arg(0).to_lowercase(),
        Func::TrimSpace => arg(0).trim().to_string(),
        Func::Title => title(arg(0)),
        Func::Replace => {
            let (from, to, text) = (arg(0), arg(1), arg(2));
            // The only function that grows its input: size it before building it.
            if to.len() > from.len() {
                let grows = text.matches(from).count().saturating_mul(to.len() - from.len());
                check(text.len().saturating_add(grows))?;
            }
            text.replace(from, to)
        }
        Func::Default => {
            if arg(1).is_empty() {
                arg(0).to_string()
            } else {
                arg(1).to_string()
            }
        }
        Func::TrimPrefix => arg(1).strip_prefix(arg(0)).unwrap_or(arg(1)).to_string(),
        Func::TrimSuffix => arg(1).strip_suffix(arg(0)).unwrap_or(arg(1)).to_string(),
        Func::Line => scope.line.to_string(),
        Func::Timestamp => {
            chrono::DateTime::from_timestamp_nanos(scope.timestamp).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        }
    })
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn parse_action(text: &str) -> Result<Vec<Command>, String> {
    let words = split_words(text)?;
    let mut cmds = Vec::new();
    for part in words.split(|w| w == &Word::Pipe) {
        let mut args = Vec::new();
        for w in part {
            args.push(match w {
                Word::Pipe => return Err("template: unexpected |".into()),
                Word::Str(s) => Arg::Literal(s.clone()),
                Word::Bare(b) if b.starts_with('.') && b.len() > 1 => Arg::Field(b[1..].to_string()),
                Word::Bare(b) if b.parse::<f64>().is_ok() => Arg::Literal(b.clone()),
                Word::Bare(b) => match Func::from_name(b) {
                    Some(f) => Arg::Func(f),
                    None => return Err(format!("template: function {b:?} not defined")),
                },
            });
        }
        if args.is_empty() {
            return Err("template: missing value for command".into());
        }
        if let Some(Arg::Func(f)) = args.first() {
            let given = args.len() - 1 + usize::from(!cmds.is_empty());
            if given != f.arity() {
                return Err(format!(
                    "template: wrong number of args for function: want {} got {given}",
                    f.arity()
                ));
            }
        } else if args.len() > 1 {
            return Err("template: can't give argument to non-function".into());
        }
        cmds.push(Command { args });
    }
    Ok(cmds)
}

#[derive(Clone, Debug, PartialEq)]
enum Word {
    Pipe,
    Str(String),
    Bare(String),
}

fn split_words(text: &str) -> Result<Vec<Word>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '|' {
            chars.next();
            out.push(Word::Pipe);
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(e) => s.push(e),
                        None => return Err("template: unterminated quoted string".into()),
                    },
                    Some(ch) => s.push(ch),
                    None => return Err("template: unterminated quoted string".into()),
                }
            }
            out.push(Word::Str(s));
        } else if c == '`' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('`') => break,
                    Some(ch) => s.push(ch),
                    None => return Err("template: unterminated raw quoted string".into()),
                }
            }
            out.push(Word::Str(s));
        } else {
            let mut s = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '|' || ch == '"' {
                    break;
                }
                s.push(ch);
                chars.next();
            }
            if !(s
                .chars()
                .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '.' || ch == '-'))
            {
                return Err(format!("template: unexpected {s:?} in command"));
            }
            if matches!(
                s.as_str(),
                "if" | "else" | "end" | "range" | "with" | "define" | "template"
            ) {
                return Err(format!("template: {s} actions are not supported"));
            }
            out.push(Word::Bare(s));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, labels: &[(&str, &str)]) -> String {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Template::parse(t)
            .unwrap()
            .render(&Scope {
                labels: &labels,
                line: "the line",
                timestamp: 1_500_000_000,
            })
            .unwrap()
    }

    /// `replace` of a one-character pattern by a long text grows a line geometrically stage after
    /// stage; the bound stops it before the text is built, naming itself.
    #[test]
    fn a_render_past_the_bound_fails_before_it_is_built() {
        let labels = BTreeMap::new();
        let long = "x".repeat(10_000);
        let line = "a".repeat(200);
        let scope = Scope {
            labels: &labels,
            line: &line,
            timestamp: 0,
        };
        let grow = Template::parse(&format!(r#"{{{{ replace "a" "{long}" __line__ }}}}"#)).unwrap();
        // 200 × 10,000 bytes = 2,000,000 > 1 MiB.
        let err = grow.render(&scope).unwrap_err();
        assert!(err.contains("1048576 bytes"), "{err}");
        assert!(err.contains("2000000"), "{err}");
        // Under the bound it renders exactly.
        let short_line = "a".repeat(100);
        let ok = grow
            .render(&Scope {
                line: &short_line,
                ..scope
            })
            .unwrap();
        assert_eq!(ok.len(), 1_000_000);
        // Text nodes count too.
        let text = Template::parse(&format!("{}{{{{ __line__ }}}}", "t".repeat(MAX_FORMATTED_BYTES))).unwrap();
        assert!(text.render(&scope).is_err());
    }

    #[test]
    fn logql_template_fields_functions_and_pipes() {
        assert_eq!(render("{{.a}}-{{ .b }}", &[("a", "x"), ("b", "y")]), "x-y");
        assert_eq!(render("{{.missing}}!", &[]), "!");
        assert_eq!(render("{{ .a | ToUpper }}", &[("a", "abc")]), "ABC");
        assert_eq!(render("{{ ToLower .a }}", &[("a", "ABC")]), "abc");
        assert_eq!(render(r#"{{ .a | default "none" }}"#, &[]), "none");
        assert_eq!(render(r#"{{ replace "a" "o" .a }}"#, &[("a", "banana")]), "bonono");
        assert_eq!(
            render("{{ __line__ }} @ {{ __timestamp__ }}", &[]),
            "the line @ 1970-01-01T00:00:01.500Z"
        );
        assert_eq!(render("a  {{- .x -}}  b", &[("x", "X")]), "aXb");
        assert_eq!(
            render("{{ .a | trim | title }}", &[("a", "  hello world ")]),
            "Hello World"
        );
    }

    #[test]
    fn logql_template_rejects_what_it_does_not_know() {
        assert!(Template::parse("{{ printf \"%d\" .a }}").is_err());
        assert!(Template::parse("{{ if .a }}x{{ end }}").is_err());
        assert!(Template::parse("{{ .a ").is_err());
        assert!(Template::parse("{{ ToUpper }}").is_err());
        assert!(Template::parse("{{ .a .b }}").is_err());
    }
}
