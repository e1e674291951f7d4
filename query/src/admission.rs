//! Admission of a query's text: its length and its nesting depth are bounded before any parser
//! sees it.
//!
//! Parsing, planning, evaluating, printing and even dropping a syntax tree recurse once per level
//! of nesting (`promql-parser`'s tree and its `Display`, our planner and evaluators, the LogQL
//! recursive-descent parser). A stack overflow cannot be caught: it aborts the process, ingest
//! included. So the depth a query *could* produce is measured here on the text alone, with a
//! linear scan that allocates one small frame per open group and recurses nowhere, and a query
//! beyond [`TextLimits::max_depth`] is refused with a 400 naming the option before anything
//! recursive runs.
//!
//! # What counts as a level
//!
//! The scan computes an upper bound of the syntax tree's depth, for both languages:
//!
//! - every parenthesis, bracket and brace group is a level (a call, an aggregation, a paren, a
//!   selector, a range or subquery); a bracket group also counts as an operator of its own
//!   group, since a subquery wraps the expression before it;
//! - every operator inside a group is a level of that group: binary operators (`+ - * / % ^`,
//!   comparisons, `and or unless atan2`, LogQL label filters `= =~ !~ > ...`) chain into a tree as
//!   deep as the chain is long, unary signs nest one per sign. A group is then as deep as its
//!   operator count plus its deepest child group plus one (the chain may sit on top of the
//!   deepest child, so both add up).
//!
//! Inside braces (label matchers, always a flat list) operators are not counted. Nothing inside
//! string literals or comments counts; each language's literal and comment rules are the ones of
//! its lexer ([`Language`]), so text the lexer reads as code is never skipped here (a query whose
//! literal or comment does not end fails in the lexer, which runs whole before any parsing).
//!
//! # The stack admitted queries run on
//!
//! The bound alone does not make an admitted query safe: a level costs a few kilobytes of stack
//! in an optimized build and up to ~30 KB in a debug one (PromQL's function calls), and tokio's
//! threads have 2 MiB. So both engines parse, plan and evaluate on threads of their own with
//! [`DEEP_STACK_BYTES`] ([`on_deep_stack`], [`on_deep_stack_async`]): a query at the default
//! bound uses a few MiB there at most. The stack is reserved address space; only the pages a
//! query touches are ever backed by memory.
//!
//! Every realistic query is a few levels deep (a dashboard's `sum by (x) (rate(a[5m])) /
//! sum by (x) (rate(b[5m])) * 100 > 5` is 7); the bound only refuses generated or hostile text.

use std::future::Future;

use crate::error::{Error, Result};

/// The stack of the threads queries are parsed, planned and evaluated on: ample room for the
/// deepest admitted query (the measured worst case, PromQL function calls in a debug build, is
/// ~30 KB per level: 4 MiB at a depth of 128).
pub(crate) const DEEP_STACK_BYTES: usize = 32 << 20;

/// At most this many query threads at once (the cap tokio's blocking pool, which evaluation
/// used before, had): a flood of queries waits for a thread instead of starting thousands.
const MAX_QUERY_THREADS: usize = 512;

/// The permits of [`MAX_QUERY_THREADS`]; a thread holds one until it ends.
static QUERY_THREADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_QUERY_THREADS);

async fn thread_permit() -> Result<tokio::sync::SemaphorePermit<'static>> {
    QUERY_THREADS
        .acquire()
        .await
        .map_err(|_| Error::Internal("the query thread pool is closed".into()))
}

/// Runs `f` (parsing, planning or evaluating: CPU-bound and recursive) on a thread of its own
/// with [`DEEP_STACK_BYTES`] of stack, and awaits its answer.
pub(crate) async fn on_deep_stack<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let permit = thread_permit().await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    spawn_detached(move || {
        let _permit = permit;
        let _ = tx.send(f());
    })?;
    rx.await
        .map_err(|_| Error::Internal("the query thread failed".into()))?
}

/// Starts `f` on a detached thread of its own with [`DEEP_STACK_BYTES`] of stack.
///
/// The thread is detached (its `JoinHandle` dropped) before it may run `f`, so never while it
/// may be ending: glibc (2.36 here) lets `pthread_detach` race a thread that exits at that
/// moment — the exiting thread, seeing itself detached, frees its stack, which holds the very
/// descriptor `pthread_detach` is still reading — and the whole process dies of a SIGSEGV. The
/// `promql_eval` fuzz target found it after some hundred thousand queries: its core showed the
/// SIGSEGV in `pthread_detach`, under the dropped handle of an evaluation thread.
fn spawn_detached(f: impl FnOnce() + Send + 'static) -> Result<()> {
    let (go, wait) = std::sync::mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name("query-eval".into())
        .stack_size(DEEP_STACK_BYTES)
        .spawn(move || {
            if wait.recv().is_ok() {
                f();
            }
        })
        .map_err(|e| Error::Internal(format!("starting a query thread: {e}")))?;
    drop(handle);
    // Only now may it run, and so end.
    let _ = go.send(());
    Ok(())
}

/// Drives `fut` (a whole LogQL query, whose parser and evaluator recurse through async calls) to
/// completion on a thread of its own with [`DEEP_STACK_BYTES`] of stack, inside the caller's
/// runtime, and awaits its answer. Dropping the returned future cancels `fut` as dropping `fut`
/// itself would: the thread stops at `fut`'s next await.
pub(crate) async fn on_deep_stack_async<T: Send + 'static>(
    fut: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let permit = thread_permit().await?;
    let runtime = tokio::runtime::Handle::current();
    // The request's warnings collector is task-local: carry it onto the thread.
    let fut = crate::remote::with_warnings(crate::remote::current_warnings(), fut);
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Dropped with this future: the thread's `select!` then drops `fut`.
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    spawn_detached(move || {
        let _permit = permit;
        let answer = runtime.block_on(async move {
            tokio::select! {
                // A dropped caller is noticed at `fut`'s first await after it, never later.
                biased;
                _ = cancelled => None,
                answer = fut => Some(answer),
            }
        });
        if let Some(answer) = answer {
            let _ = tx.send(answer);
        }
    })?;
    let answer = rx.await;
    drop(cancel);
    answer.map_err(|_| Error::Internal("the query thread failed".into()))?
}

/// The bounds a query's text is admitted under, and the configuration path they come from (for
/// the error message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TextLimits {
    /// The longest text, in bytes.
    pub(crate) max_bytes: usize,
    /// The deepest nesting, counted as the module documentation says.
    pub(crate) max_depth: usize,
    /// Where both options live in the configuration (`query` or `query.logql`).
    pub(crate) section: &'static str,
}

/// The query languages, whose literal and comment rules differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Language {
    /// `promql-parser`'s lexer: `"…"`, `'…'` and `` `…` `` literals, each with backslash escapes
    /// (the crate escapes inside backquotes too); `#` comments to the end of the line (`\n` or
    /// `\r`).
    Promql,
    /// Our LogQL lexer (`logql::parser::lexer`): `"…"` with backslash escapes, raw `` `…` ``;
    /// `#` comments to `\n`.
    Logql,
    /// Our TraceQL lexer (`traces::traceql`): `"…"` with backslash escapes; no comments.
    Traceql,
}

impl Language {
    /// Whether `c` opens a string literal, and whether a backslash escapes inside it.
    fn literal(self, c: u8) -> Option<bool> {
        match (self, c) {
            (_, b'"') | (Language::Promql, b'\'' | b'`') => Some(true),
            (Language::Logql, b'`') => Some(false),
            _ => None,
        }
    }

    fn has_comments(self) -> bool {
        self != Language::Traceql
    }

    fn ends_comment(self, c: u8) -> bool {
        c == b'\n' || (self == Language::Promql && c == b'\r')
    }
}

/// Refuses `text` when it is longer or deeper than `limits` allow (a `QueryLimit`), or, for
/// PromQL within them, when it holds a number too large for a duration where one is expected.
pub(crate) fn admit(text: &str, language: Language, limits: TextLimits) -> Result<()> {
    if text.len() > limits.max_bytes {
        return Err(Error::QueryLimit {
            option: format!("{}.max_query_bytes", limits.section),
            limit: limits.max_bytes,
            found: format!("the query is {} bytes long", text.len()),
        });
    }
    let depth = depth(text, language);
    if depth > limits.max_depth {
        return Err(Error::QueryLimit {
            option: format!("{}.max_query_depth", limits.section),
            limit: limits.max_depth,
            found: format!(
                "the query nests {depth} levels deep (each parenthesis, bracket, brace, unary sign and \
                 chained operator is a level)"
            ),
        });
    }
    // After the bounds, so text over them is always refused as such (one answer per text).
    if language == Language::Promql
        && let Some(found) = oversized_duration(text)
    {
        return Err(Error::BadData(format!(
            "{found} is not a duration: durations and offsets are at most {MAX_DURATION_SECS} seconds (Go's)"
        )));
    }
    Ok(())
}

/// One open group of the scan.
#[derive(Default)]
struct Group {
    /// Operators seen directly in the group.
    operators: usize,
    /// The depth of its deepest closed child group.
    deepest_child: usize,
    /// A brace group: label matchers, whose operators are not counted.
    braces: bool,
}

impl Group {
    fn depth(&self) -> usize {
        self.operators.saturating_add(self.deepest_child)
    }
}

/// An upper bound of the depth of the syntax tree `text` parses to (0 for a bare name or
/// number), as the module documentation defines it. Linear in the text, recursion-free.
pub(crate) fn depth(text: &str, language: Language) -> usize {
    let bytes = text.as_bytes();
    // TraceQL's conditions are leaves and its `&&`/`||` chains flat lists: only groups nest.
    let flat = language == Language::Traceql;
    let mut open: Vec<Group> = vec![Group {
        braces: flat,
        ..Group::default()
    }];
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        if let Some(escapes) = language.literal(c) {
            i = literal_end(bytes, i, c, escapes);
            continue;
        }
        match c {
            b'#' if language.has_comments() => {
                while i < bytes.len() && !language.ends_comment(bytes[i]) {
                    i += 1;
                }
            }
            b'(' | b'{' => open.push(Group {
                braces: flat || c == b'{',
                ..Group::default()
            }),
            // A range or subquery wraps what precedes it (`(x)[5m:1m]`, `x[5m:][5m:]`): a level
            // over it, like an operator, as well as a group of its own.
            b'[' => {
                count(&mut open);
                open.push(Group {
                    braces: flat,
                    ..Group::default()
                });
            }
            b')' | b']' | b'}' => close(&mut open),
            // A LogQL line filter (`|=`, `|~`, `|>`) is a stage of a flat list; so is `|`.
            b'|' => {
                if matches!(bytes.get(i), Some(b'=' | b'~' | b'>')) {
                    i += 1;
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => count(&mut open),
            // One operator per run: `==`, `!=`, `>=`, `=~`, `!~`...
            b'=' | b'!' | b'<' | b'>' | b'~' => {
                while matches!(bytes.get(i), Some(b'=' | b'!' | b'<' | b'>' | b'~')) {
                    i += 1;
                }
                count(&mut open);
            }
            c if c.is_ascii_digit() || c == b'.' => i = number_end(bytes, i),
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i - 1;
                while matches!(bytes.get(i), Some(&b) if b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                    i += 1;
                }
                let word = &text[start..i];
                if ["and", "or", "unless", "atan2"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    count(&mut open);
                }
            }
            _ => {}
        }
    }
    while open.len() > 1 {
        close(&mut open);
    }
    open.pop().map_or(0, |top| top.depth())
}

/// The longest duration PromQL has, in seconds: Go's `time.Duration` (an i64 of nanoseconds).
const MAX_DURATION_SECS: u64 = 9_223_372_036;

/// A bare number where PromQL reads a duration (inside a range or subquery's brackets, or after
/// `offset` or `@`) too large to be one, or `Inf`/`NaN` there. `promql-parser` converts such a
/// number to a `Duration` and panics beyond its range (found by the `promql` fuzz target), so
/// it is refused here, before any parser runs. Same literal and comment rules as [`depth`].
fn oversized_duration(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let language = Language::Promql;
    let (mut brackets, mut after_modifier) = (0usize, false);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        if let Some(escapes) = language.literal(c) {
            i = literal_end(bytes, i, c, escapes);
            after_modifier = false;
            continue;
        }
        let in_duration = brackets > 0 || after_modifier;
        match c {
            b'#' if language.has_comments() => {
                while i < bytes.len() && !language.ends_comment(bytes[i]) {
                    i += 1;
                }
            }
            b'[' => brackets += 1,
            b']' => brackets = brackets.saturating_sub(1),
            b'@' => {
                after_modifier = true;
                continue;
            }
            // A subquery's step follows the colon (`[5m:1m]`); names hold no brackets.
            b':' if brackets > 0 => {}
            c if c.is_ascii_digit() || c == b'.' => {
                let start = i - 1;
                i = number_end(bytes, i);
                let literal = &text[start..i];
                if in_duration
                    && let Ok(v) = literal.replace('_', "").parse::<f64>()
                    && (v.is_nan() || v.abs() > MAX_DURATION_SECS as f64)
                {
                    return Some(literal.to_string());
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i - 1;
                while matches!(bytes.get(i), Some(&b) if b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                    i += 1;
                }
                let word = &text[start..i];
                if in_duration && ["inf", "nan"].iter().any(|k| word.eq_ignore_ascii_case(k)) {
                    return Some(word.to_string());
                }
                if word.eq_ignore_ascii_case("offset") {
                    after_modifier = true;
                    continue;
                }
            }
            c if c.is_ascii_whitespace() || c == b'+' || c == b'-' => continue,
            _ => {}
        }
        after_modifier = false;
    }
    None
}

/// Where a number, duration or byte size that started just before `from` ends. The sign of a
/// decimal exponent (`1e-3`, `2.5E+4`) belongs to the number; any other sign is an operator.
fn number_end(bytes: &[u8], from: usize) -> usize {
    let start = from - 1;
    let mut i = from;
    while matches!(bytes.get(i), Some(&b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
        i += 1;
    }
    let (mantissa, last) = (&bytes[start..i - 1], bytes[i - 1]);
    let decimal_exponent = matches!(last, b'e' | b'E') && mantissa.iter().all(|b| b.is_ascii_digit() || *b == b'.');
    if decimal_exponent && matches!(bytes.get(i), Some(b'+' | b'-')) {
        i += 1;
        while matches!(bytes.get(i), Some(b) if b.is_ascii_digit()) {
            i += 1;
        }
    }
    i
}

/// Where the literal opened by `quote` (just before `from`) ends: past its closing quote, or at
/// the end of the text when it does not close (the lexer then refuses the query).
fn literal_end(bytes: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        if c == quote {
            return i;
        }
        if escapes && c == b'\\' {
            i += 1;
        }
    }
    bytes.len()
}

fn count(open: &mut [Group]) {
    if let Some(group) = open.last_mut()
        && !group.braces
    {
        group.operators = group.operators.saturating_add(1);
    }
}

/// Closes the innermost group into its parent (a closer without an opener is the parser's
/// error to report, and closes nothing here).
fn close(open: &mut Vec<Group>) {
    if open.len() < 2 {
        return;
    }
    if let Some(group) = open.pop() {
        let depth = group.depth().saturating_add(1);
        if let Some(parent) = open.last_mut() {
            parent.deepest_child = parent.deepest_child.max(depth);
        }
    }
}

#[cfg(test)]
mod tests;
