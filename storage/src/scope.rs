//! Cluster globs: which clusters a token may read, which a retention rule covers.
//!
//! A glob is a cluster name in which `*` matches any run of characters (the empty one too) and
//! `?` exactly one character; every other character matches itself (no escaping, no classes).
//! [`glob`] is the one implementation: the retention rules, the write and read scopes of tokens
//! and the matcher the query engines add to every selection all use it, so a cluster a scope
//! admits is exactly one its matcher selects (a test checks the two agree).

use serde::{Deserialize, Serialize};

use crate::types::{CLUSTER, MatchOp, Matcher};

/// Does `text` match the glob `pattern` (`*` any run, `?` one character)?
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut si) = (0, 0);
    // Where the last `*` was and how much of the text it has swallowed: backtrack there.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `pattern` holds a glob character (`*` or `?`), i.e. names possibly many clusters.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// A set of clusters named by globs: a token's read scope.
///
/// Serialized as the list of globs (`read = ["prod-*", "staging"]`). An empty list admits no
/// cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClusterScope {
    globs: Vec<String>,
}

impl ClusterScope {
    /// The clusters matching any of `globs`.
    pub fn new(globs: Vec<String>) -> Self {
        Self { globs }
    }

    /// The globs, as configured.
    pub fn globs(&self) -> &[String] {
        &self.globs
    }

    /// Whether no cluster is admitted.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// Whether the scope admits every cluster (one of its globs is `*`): what the internal read
    /// API asks of a querier's token, since an ingester's head holds every cluster.
    pub fn admits_every_cluster(&self) -> bool {
        self.globs.iter().any(|g| g == "*")
    }

    /// Whether the scope admits `cluster`.
    pub fn matches(&self, cluster: &str) -> bool {
        self.globs.iter().any(|g| glob(g, cluster))
    }

    /// The matcher `cluster=~"<globs as one regex>"` selecting exactly the series whose cluster
    /// the scope admits (a series without a `cluster` label matches as `""`, as every matcher).
    /// For an empty scope, a regex that matches nothing.
    pub fn to_matcher(&self) -> Matcher {
        let regex = if self.globs.is_empty() {
            // An empty character class: never matches, not even "".
            "[^\\s\\S]".to_string()
        } else {
            self.globs.iter().map(|g| glob_regex(g)).collect::<Vec<_>>().join("|")
        };
        Matcher::new(MatchOp::RegexMatch, CLUSTER, regex).expect("escaped globs are valid regexes")
    }
}

/// One glob as a regex (unanchored: [`Matcher`] anchors it and lets `.` match a newline).
fn glob_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    out.push_str("(?:");
    let mut literal = [0u8; 4];
    for c in pattern.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c => out.push_str(&regex::escape(c.encode_utf8(&mut literal))),
        }
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("prod-*", "prod-eu", true),
            ("prod-*", "prod-", true),
            ("prod-*", "dev-eu", false),
            ("*-eu-?", "prod-eu-1", true),
            ("*-eu-?", "prod-eu-12", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("a*b*c", "aXbYbZc", true),
            ("é?", "éé", true),
        ] {
            assert_eq!(glob(p, s), want, "{p} ~ {s}");
        }
        assert!(is_glob("prod-*") && is_glob("a?") && !is_glob("prod-eu-1"));
    }

    /// Regex metacharacters in a cluster name are matched literally by the matcher, as by the
    /// glob: `a.c` must not admit `abc`, `(x|y)` only itself.
    #[test]
    fn the_matcher_escapes_everything_but_the_glob_characters() {
        let scope = ClusterScope::new(vec!["a.c".into(), "(x|y)*".into(), "z?".into()]);
        let m = scope.to_matcher();
        for (cluster, want) in [
            ("a.c", true),
            ("abc", false),
            ("(x|y)", true),
            ("(x|y)-1", true),
            ("x", false),
            ("z1", true),
            ("z\n", true),
            ("z", false),
            ("", false),
        ] {
            assert_eq!(m.matches(cluster), want, "{cluster:?}");
            assert_eq!(scope.matches(cluster), want, "{cluster:?}");
        }
        let none = ClusterScope::default().to_matcher();
        assert!(!none.matches("") && !none.matches("a"));
    }

    proptest! {
        /// The scope and its matcher admit exactly the same clusters.
        #[test]
        fn matcher_agrees_with_the_glob(
            globs in prop::collection::vec("[a-c.*?|()\\\\-]{0,5}", 0..4),
            cluster in "[a-c.|()\\\\-]{0,6}",
        ) {
            let scope = ClusterScope::new(globs);
            prop_assert_eq!(scope.to_matcher().matches(&cluster), scope.matches(&cluster));
        }
    }
}
