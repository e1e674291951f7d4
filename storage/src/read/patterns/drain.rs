//! Drain log-pattern clustering, behind [`crate::read::LogSource::log_patterns`], in the spirit of Loki's pattern
//! ingester (`pkg/pattern/drain`, itself after He et al., "Drain: An Online Log Parsing Approach
//! with Fixed Depth Tree", ICWS 2017).
//!
//! A line is split into tokens at spaces and punctuation (Loki's punctuation tokenizer: `=` is a
//! delimiter, `_ - . : /` are not). Lines with the same token count descend a prefix tree by their
//! first tokens (at most `depth - 2` levels; a token holding a digit goes down the `<_>` branch,
//! and a node with `max_children` children sends new tokens there too), and at the leaf the line
//! joins the most similar cluster (share of equal tokens, ties to the cluster with more `<_>`) if
//! that share is at least `similarity`, turning every differing token of the cluster into `<_>`;
//! otherwise it starts a cluster of its own.
//!
//! Bounded: at most `max_clusters` clusters are kept (the least recently matched is evicted, as
//! Loki's LRU does), and the tree is rebuilt from the clusters kept once as many have been
//! evicted, so its size follows the clusters kept rather than the lines seen. Lines longer than
//! `max_line_bytes` or with fewer than 4 or more than 80 tokens are skipped, as Loki skips them.
//!
//! Patterns merge the same way: [`Drain::train_pattern`] trains a pattern another instance made
//! (a file's summary, another source's answer) with its counts, its `<_>` staying varying.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

/// The placeholder of a varying token (Loki's `ParamString`).
pub(crate) const PARAM: &str = "<_>";

/// Tokens counted at most; the rest of a line is its last token.
const MAX_TOKENS_SPLIT: usize = 127;
/// Lines with fewer tokens are not clustered (Loki: `TooFewTokens`).
const MIN_TOKENS: usize = 4;
/// Lines with more tokens are not clustered (Loki: `TooManyTokens`).
const MAX_TOKENS: usize = 80;

/// Drain's settings; the defaults are Loki's (`drain.DefaultConfig`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DrainConfig {
    /// Loki's `LogClusterDepth`: the tree descends `depth - 2` tokens.
    pub(crate) depth: usize,
    /// Loki's `SimTh`: the least share of equal tokens for a line to join a cluster.
    pub(crate) similarity: f64,
    /// Loki's `MaxChildren` of a tree node.
    pub(crate) max_children: usize,
    /// Loki's `MaxClusters`: clusters kept, the least recently matched evicted first.
    pub(crate) max_clusters: usize,
    /// Loki's `MaxAllowedLineLength`: longer lines are skipped.
    pub(crate) max_line_bytes: usize,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            depth: 30,
            similarity: 0.3,
            max_children: 15,
            max_clusters: 300,
            max_line_bytes: 3000,
        }
    }
}

/// One pattern: its tokens (varying ones are [`PARAM`]), where its first line had spaces, and
/// how many lines it took per time bucket.
#[derive(Debug)]
pub(crate) struct Cluster {
    tokens: Vec<String>,
    /// Indexes of the tokens followed by a space (one entry per space).
    spaces_after: Vec<usize>,
    /// Lines per bucket (the caller's time buckets).
    pub(crate) samples: BTreeMap<i64, u64>,
    last_used: u64,
}

impl Cluster {
    /// The pattern text: tokens joined as the first line had them, runs of `<_>` as one.
    pub(crate) fn pattern(&self) -> String {
        let mut out = String::new();
        let mut spaces = self.spaces_after.iter().peekable();
        for (i, token) in self.tokens.iter().enumerate() {
            if !(token == PARAM && out.ends_with(PARAM)) {
                out.push_str(token);
            }
            while spaces.next_if(|&&s| s == i).is_some() {
                out.push(' ');
            }
        }
        out
    }

    /// Lines it took in all.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.samples.values().sum()
    }
}

#[derive(Debug, Default)]
struct Node {
    children: Vec<(String, usize)>,
    clusters: Vec<u64>,
}

impl Node {
    fn child(&self, key: &str) -> Option<usize> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, n)| *n)
    }
}

/// A Drain instance: train it line by line, then read its clusters.
#[derive(Debug)]
pub(crate) struct Drain {
    cfg: DrainConfig,
    /// Node 0 is the root; its children are keyed by token count.
    nodes: Vec<Node>,
    clusters: HashMap<u64, Cluster>,
    next_id: u64,
    clock: u64,
    evicted_since_rebuild: usize,
}

impl Drain {
    pub(crate) fn new(cfg: DrainConfig) -> Self {
        assert!(cfg.depth >= 3, "drain depth must be at least 3");
        Self {
            cfg,
            nodes: vec![Node::default()],
            clusters: HashMap::new(),
            next_id: 0,
            clock: 0,
            evicted_since_rebuild: 0,
        }
    }

    /// Adds `line` at time bucket `bucket`; false when the line was skipped (too long, too few
    /// or too many tokens).
    pub(crate) fn train(&mut self, line: &str, bucket: i64) -> bool {
        if line.len() > self.cfg.max_line_bytes {
            return false;
        }
        let (tokens, spaces_after) = tokenize(line);
        if !(MIN_TOKENS..=MAX_TOKENS).contains(&tokens.len()) {
            return false;
        }
        self.add(tokens, spaces_after, [(bucket, 1)]);
        true
    }

    /// Adds a pattern another Drain made, with its lines per bucket. The line limits do not
    /// apply: its lines passed them, and printing may have shortened it (runs of `<_>`).
    pub(crate) fn train_pattern(&mut self, pattern: &str, samples: impl IntoIterator<Item = (i64, u64)>) {
        let (tokens, spaces_after) = tokenize(pattern);
        if !tokens.is_empty() {
            self.add(tokens, spaces_after, samples);
        }
    }

    fn add(&mut self, tokens: Vec<&str>, spaces_after: Vec<usize>, samples: impl IntoIterator<Item = (i64, u64)>) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(id) = self.search(&tokens) {
            let cluster = self.clusters.get_mut(&id).expect("search finds live clusters");
            for (kept, token) in cluster.tokens.iter_mut().zip(&tokens) {
                if kept != token {
                    *kept = PARAM.to_string();
                }
            }
            for (bucket, n) in samples {
                *cluster.samples.entry(bucket).or_default() += n;
            }
            cluster.last_used = clock;
            return;
        }
        self.next_id += 1;
        let id = self.next_id;
        let tokens: Vec<String> = tokens.into_iter().map(str::to_string).collect();
        self.add_to_tree(id, &tokens);
        let mut kept = BTreeMap::new();
        for (bucket, n) in samples {
            *kept.entry(bucket).or_default() += n;
        }
        self.clusters.insert(
            id,
            Cluster {
                tokens,
                spaces_after,
                samples: kept,
                last_used: clock,
            },
        );
        if self.clusters.len() > self.cfg.max_clusters {
            self.evict_least_recent();
        }
    }

    /// The clusters kept.
    pub(crate) fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }

    fn evict_least_recent(&mut self) {
        if let Some(id) = self.clusters.iter().min_by_key(|(_, c)| c.last_used).map(|(id, _)| *id) {
            self.clusters.remove(&id);
            self.evicted_since_rebuild += 1;
        }
        if self.evicted_since_rebuild >= self.cfg.max_clusters {
            // Evicted clusters leave their tree paths behind: rebuild from the ones kept.
            self.evicted_since_rebuild = 0;
            self.nodes = vec![Node::default()];
            let mut live: Vec<(u64, Vec<String>)> =
                self.clusters.iter().map(|(id, c)| (*id, c.tokens.clone())).collect();
            live.sort_by_key(|(id, _)| *id);
            for (id, tokens) in live {
                self.add_to_tree(id, &tokens);
            }
        }
    }

    /// Loki's `treeSearch`: the leaf for the line's first tokens, then its best cluster.
    fn search(&self, tokens: &[&str]) -> Option<u64> {
        let mut node = self.nodes[0].child(len_key(tokens.len()))?;
        let max_depth = self.cfg.depth - 2;
        for (i, token) in tokens.iter().enumerate() {
            let depth = i + 1;
            if depth >= max_depth || depth == tokens.len() {
                break;
            }
            let here = &self.nodes[node];
            node = here.child(token).or_else(|| here.child(PARAM))?;
        }
        self.best_match(&self.nodes[node].clusters, tokens)
    }

    /// Loki's `fastMatch`: the most similar cluster (ties to more `<_>`) if similar enough.
    fn best_match(&self, ids: &[u64], tokens: &[&str]) -> Option<u64> {
        let mut best: Option<(f64, usize, u64)> = None;
        for id in ids {
            let Some(cluster) = self.clusters.get(id) else { continue };
            let (mut same, mut params) = (0usize, 0usize);
            for (kept, token) in cluster.tokens.iter().zip(tokens) {
                if kept == PARAM {
                    params += 1;
                } else if kept == token {
                    same += 1;
                }
            }
            let sim = same as f64 / tokens.len() as f64;
            if best.is_none_or(|(s, p, _)| sim > s || (sim == s && params > p)) {
                best = Some((sim, params, *id));
            }
        }
        best.filter(|(sim, _, _)| *sim >= self.cfg.similarity)
            .map(|(_, _, id)| id)
    }

    /// Loki's `addSeqToPrefixTree`.
    fn add_to_tree(&mut self, id: u64, tokens: &[String]) {
        let key = len_key(tokens.len());
        let mut node = match self.nodes[0].child(key) {
            Some(n) => n,
            None => self.new_child(0, key.to_string()),
        };
        let max_depth = self.cfg.depth - 2;
        for (i, token) in tokens.iter().enumerate() {
            let depth = i + 1;
            if depth >= max_depth || depth >= tokens.len() {
                let clusters = &self.clusters;
                let leaf = &mut self.nodes[node];
                leaf.clusters.retain(|c| clusters.contains_key(c));
                leaf.clusters.push(id);
                return;
            }
            node = match self.nodes[node].child(token) {
                Some(next) => next,
                None => self.descend_new(node, token),
            };
        }
    }

    /// Where a token the node has no child for goes: its own child while there is room and it
    /// holds no digit, else the `<_>` child.
    fn descend_new(&mut self, node: usize, token: &str) -> usize {
        let param = self.nodes[node].child(PARAM);
        let count = self.nodes[node].children.len();
        let room = self.cfg.max_children;
        if token.chars().any(char::is_numeric) {
            return param.unwrap_or_else(|| self.new_child(node, PARAM.to_string()));
        }
        match param {
            Some(_) if count < room => self.new_child(node, token.to_string()),
            Some(p) => p,
            None if count + 1 < room => self.new_child(node, token.to_string()),
            None => self.new_child(node, PARAM.to_string()),
        }
    }

    fn new_child(&mut self, parent: usize, key: String) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.nodes[parent].children.push((key, id));
        id
    }
}

/// The root's key for lines of `n` tokens (its text), without formatting one per line.
fn len_key(n: usize) -> &'static str {
    static KEYS: LazyLock<Vec<String>> = LazyLock::new(|| (0..=MAX_TOKENS_SPLIT + 1).map(|n| n.to_string()).collect());
    KEYS.get(n).map_or("many", String::as_str)
}

/// Loki's punctuation tokenizer: tokens split at spaces (remembered, to join them back), and at
/// `=` and Go's `unicode.IsPunct` characters other than `_ - . : /` (kept as tokens).
///
/// Only ASCII characters split (every other one stays inside its token, alphanumeric or not),
/// so the line is walked byte by byte: a UTF-8 sequence's bytes are never ASCII.
fn tokenize(line: &str) -> (Vec<&str>, Vec<usize>) {
    let mut tokens = Vec::with_capacity(32);
    let mut spaces_after = Vec::with_capacity(16);
    let mut start = 0;
    for (i, &b) in line.as_bytes().iter().enumerate() {
        if !SPLITS[b as usize] {
            continue;
        }
        if tokens.len() >= MAX_TOKENS_SPLIT {
            break;
        }
        if i > start {
            tokens.push(&line[start..i]);
        }
        if b == b' ' {
            if let Some(last) = tokens.len().checked_sub(1) {
                spaces_after.push(last);
            }
        } else {
            tokens.push(&line[i..i + 1]);
        }
        start = i + 1;
    }
    if start < line.len() {
        tokens.push(&line[start..]);
    }
    (tokens, spaces_after)
}

/// The bytes a line splits at: space, `=` and [`is_go_punct`].
static SPLITS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = b == b' ' as usize || b == b'=' as usize || is_go_punct(b as u8);
        b += 1;
    }
    t
};

/// Go's `unicode.IsPunct` on ASCII (Unicode category P; `$ + < = > ^ \` | ~` are symbols).
/// Other characters stay inside tokens.
const fn is_go_punct(c: u8) -> bool {
    matches!(
        c,
        b'!' | b'"'
            | b'#'
            | b'%'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b','
            | b';'
            | b'?'
            | b'@'
            | b'['
            | b'\\'
            | b']'
            | b'{'
            | b'}'
    )
}

#[cfg(test)]
mod tests;
