//! Go-template expansion of alert labels and annotations (`{{ $labels.x }}`, `{{ $value }}`,
//! `humanize*`), as Prometheus expands them.
//!
//! Placeholder on this branch: the real implementation arrives with its own branch; until then
//! `check` accepts every text and `expand` returns the text unchanged.

use std::collections::BTreeMap;

/// What a template sees: `$labels`, `$value`, `$externalLabels`, `$externalURL`.
#[derive(Debug)]
#[allow(dead_code, reason = "the placeholder expands nothing")]
pub(crate) struct TemplateData<'a> {
    pub(crate) labels: &'a BTreeMap<String, String>,
    pub(crate) value: f64,
    pub(crate) external_labels: &'a BTreeMap<String, String>,
    pub(crate) external_url: &'a str,
}

/// Parses `text` without expanding it (load-time check); Err is a readable reason.
pub(crate) fn check(_text: &str) -> Result<(), String> {
    Ok(())
}

/// Expands `text` as Prometheus expands alert labels and annotations.
pub(crate) fn expand(text: &str, _data: &TemplateData<'_>) -> Result<String, String> {
    Ok(text.to_string())
}
