//! Test fixtures: the in-memory `Source` and a label-set parser.

use tributary_storage::types::{Label, Labels};

/// The storage crate's reference in-memory `Source`; one implementation of the semantics for
/// every crate's tests.
pub(crate) use tributary_storage::test_util::MemSource as VecSource;

/// Parses `name{a="b",c="d"}` (no escapes; fixtures only).
pub(crate) fn parse_labels(text: &str) -> Labels {
    let (name, rest) = match text.find('{') {
        Some(i) => (&text[..i], &text[i + 1..text.len() - 1]),
        None => (text, ""),
    };
    let mut labels = Vec::new();
    if !name.is_empty() {
        labels.push(Label::new("__name__", name));
    }
    for pair in rest.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair.split_once('=').expect("fixture label needs '='");
        labels.push(Label::new(k.trim(), v.trim().trim_matches('"')));
    }
    Labels::new(labels)
}
