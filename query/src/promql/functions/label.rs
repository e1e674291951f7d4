//! `label_replace()` and `label_join()`: rewrite labels, never values. Series whose label sets
//! become equal are merged (an error only if both have a value at the same step).

use regex::Regex;

use crate::error::{Error, Result};
use crate::promql::value::{StepSeries, merge_series};

/// `label_replace(v, dst, replacement, src, regex)`, validated at plan time.
#[derive(Debug)]
pub(crate) struct Replace {
    dst: String,
    replacement: String,
    src: String,
    regex: Regex,
}

impl Replace {
    pub(crate) fn new(dst: &str, replacement: &str, src: &str, regex: &str) -> Result<Self> {
        // Anchored, and `.` matches newlines, as in Prometheus 3.
        let compiled = Regex::new(&format!("^(?s:{regex})$"))
            .map_err(|_| Error::Execution(format!("invalid regular expression in label_replace(): {regex}")))?;
        if dst.is_empty() {
            return Err(Error::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        Ok(Self {
            dst: dst.into(),
            replacement: replacement.into(),
            src: src.into(),
            regex: compiled,
        })
    }

    pub(crate) fn apply(&self, input: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
        merge_series(
            input
                .into_iter()
                .map(|mut s| {
                    let source = s.labels.get(&self.src).unwrap_or("").to_string();
                    // Only a match rewrites; `$1`, `${name}` and `$$` expand as in Go.
                    if let Some(caps) = self.regex.captures(&source) {
                        let mut value = String::new();
                        caps.expand(&self.replacement, &mut value);
                        s.labels.set(&self.dst, &value);
                    }
                    s
                })
                .collect(),
        )
    }
}

/// `label_join(v, dst, separator, src...)`, validated at plan time.
#[derive(Debug)]
pub(crate) struct Join {
    dst: String,
    separator: String,
    sources: Vec<String>,
}

impl Join {
    pub(crate) fn new(dst: &str, separator: &str, sources: &[String]) -> Result<Self> {
        if let Some(bad) = sources.iter().find(|s| s.is_empty()) {
            return Err(Error::Execution(format!(
                "invalid source label name in label_join(): {bad}"
            )));
        }
        if dst.is_empty() {
            return Err(Error::Execution(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        Ok(Self {
            dst: dst.into(),
            separator: separator.into(),
            sources: sources.to_vec(),
        })
    }

    pub(crate) fn apply(&self, input: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
        merge_series(
            input
                .into_iter()
                .map(|mut s| {
                    let parts: Vec<&str> = self.sources.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
                    let value = parts.join(&self.separator);
                    s.labels.set(&self.dst, &value);
                    s
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::value::Point;
    use crate::test_source::parse_labels;

    fn one(labels: &str) -> Vec<StepSeries> {
        vec![StepSeries::new(
            parse_labels(labels),
            vec![Point { step: 0, value: 1.0 }],
        )]
    }

    #[test]
    fn replace_expands_groups_only_on_a_full_match() {
        let r = Replace::new("foo", "$1-${2}x", "src", "(a+)(b+)").unwrap();
        let out = r.apply(one(r#"up{src="aabbb"}"#)).unwrap();
        assert_eq!(out[0].labels, parse_labels(r#"up{src="aabbb",foo="aa-bbbx"}"#));
        // Anchored: a partial match leaves the series alone.
        let out = r.apply(one(r#"up{src="aabbbc"}"#)).unwrap();
        assert_eq!(out[0].labels.get("foo"), None);
        // An empty result removes the destination label.
        let clear = Replace::new("src", "", "src", ".*").unwrap();
        assert_eq!(
            clear.apply(one(r#"up{src="x"}"#)).unwrap()[0].labels,
            parse_labels("up")
        );
    }

    #[test]
    fn replace_validates_at_plan_time() {
        assert!(
            Replace::new("dst", "", "src", "(")
                .unwrap_err()
                .to_string()
                .contains("label_replace()")
        );
        assert!(Replace::new("", "", "src", ".*").is_err());
    }

    #[test]
    fn join_concatenates_missing_labels_as_empty() {
        let j = Join::new("dst", "-", &["a".into(), "missing".into(), "b".into()]).unwrap();
        let out = j.apply(one(r#"up{a="1",b="2"}"#)).unwrap();
        assert_eq!(out[0].labels.get("dst"), Some("1--2"));
    }

    #[test]
    fn colliding_label_sets_at_the_same_step_are_an_error() {
        let mut input = one(r#"up{a="1"}"#);
        input.extend(one(r#"up{a="2"}"#));
        let r = Replace::new("a", "same", "a", ".*").unwrap();
        assert_eq!(
            r.apply(input).unwrap_err().to_string(),
            "vector cannot contain metrics with the same labelset"
        );
    }
}
