//! A series' labels, as both remote-write versions validate and stamp them (the rules are in
//! [`super`]'s docs).

use tributary_storage::types::{METRIC_NAME, Sample};

use crate::cluster::{ClusterContext, Stamp};
use crate::decode::limits::{Limits, storable, unstorable};

/// Validates one series as its fields arrive: labels (pushed onto the batch as they pass), then
/// float samples' timestamps, then, in [`SeriesCheck::finish`], `__name__`, the cluster and the
/// label count. The first problem found is the series' reason.
pub(super) struct SeriesCheck<'a> {
    start: usize,
    prev_name: Option<&'a [u8]>,
    has_name: bool,
    problem: Option<String>,
}

impl<'a> SeriesCheck<'a> {
    /// For a series whose labels start at `start` in the batch.
    pub(super) fn new(start: usize) -> Self {
        Self {
            start,
            prev_name: None,
            has_name: false,
            problem: None,
        }
    }

    /// Records a problem found outside these checks, unless one is already known.
    pub(super) fn fail(&mut self, reason: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.problem = Some(reason());
        }
    }

    /// The next label in wire order; kept (when valid and non-empty) by pushing it onto `labels`.
    #[inline]
    pub(super) fn label(
        &mut self,
        name: &'a [u8],
        value: &'a [u8],
        limits: &Limits,
        labels: &mut Vec<(&'a str, &'a str)>,
    ) {
        if self.problem.is_some() {
            return;
        }
        if self.prev_name.is_some_and(|p| p >= name) {
            self.problem = Some(if self.prev_name == Some(name) {
                format!("duplicate label name {:?}", String::from_utf8_lossy(name))
            } else {
                format!("labels are not sorted by name at {:?}", String::from_utf8_lossy(name))
            });
        } else {
            self.problem = check_label(name, value, limits).err();
        }
        self.prev_name = Some(name);
        if self.problem.is_none() && !value.is_empty() {
            // check_label proved both are UTF-8.
            let name = std::str::from_utf8(name).unwrap_or_default();
            let value = std::str::from_utf8(value).unwrap_or_default();
            self.has_name |= name == METRIC_NAME;
            labels.push((name, value));
        }
    }

    /// A float sample of the series: its timestamp must be storable.
    #[inline]
    pub(super) fn sample(&mut self, s: &Sample) {
        if self.problem.is_none() && !storable(s.timestamp) {
            self.problem = Some(unstorable("sample timestamp", s.timestamp));
        }
    }

    /// After the last field: the series' labels become final (stamped with the cluster, sorted)
    /// or the series is refused with its first problem.
    pub(super) fn finish(
        self,
        ctx: &'a ClusterContext,
        limits: &Limits,
        labels: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<(), String> {
        if let Some(p) = self.problem {
            return Err(p);
        }
        if !self.has_name {
            return Err("series has no __name__ label".to_string());
        }
        match ctx.stamp(&labels[self.start..])? {
            Stamp::Keep => {}
            stamp => {
                stamp.apply(labels, self.start);
                labels[self.start..].sort_unstable_by(|a, b| a.0.cmp(b.0));
            }
        }
        let n = labels.len() - self.start;
        if n > limits.max_labels_per_series {
            return Err(format!(
                "series has {n} labels, more than the limit of {}",
                limits.max_labels_per_series
            ));
        }
        Ok(())
    }
}

/// A series for a reason: its metric name and first few labels.
pub(crate) fn describe(labels: &[(&str, &str)]) -> String {
    let name = labels.iter().find(|(n, _)| *n == METRIC_NAME).map_or("", |(_, v)| *v);
    let rest: Vec<String> = labels
        .iter()
        .filter(|(n, _)| *n != METRIC_NAME)
        .take(6)
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

pub(super) fn valid_label_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

pub(super) fn valid_metric_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

fn check_label(name: &[u8], value: &[u8], limits: &Limits) -> Result<(), String> {
    if !valid_label_name(name) {
        return Err(format!(
            "invalid label name {:?} (must match [a-zA-Z_][a-zA-Z0-9_]*)",
            String::from_utf8_lossy(name)
        ));
    }
    if name.len() > limits.max_label_name_bytes {
        return Err(format!(
            "label name of {} bytes exceeds the limit of {}",
            name.len(),
            limits.max_label_name_bytes
        ));
    }
    if value.len() > limits.max_label_value_bytes {
        return Err(format!(
            "value of label {:?} is {} bytes, over the limit of {}",
            String::from_utf8_lossy(name),
            value.len(),
            limits.max_label_value_bytes
        ));
    }
    if std::str::from_utf8(value).is_err() {
        return Err(format!(
            "value of label {:?} is not valid UTF-8",
            String::from_utf8_lossy(name)
        ));
    }
    if name == METRIC_NAME.as_bytes() && !valid_metric_name(value) {
        return Err(format!(
            "invalid metric name {:?} (must match [a-zA-Z_:][a-zA-Z0-9_:]*)",
            String::from_utf8_lossy(value)
        ));
    }
    Ok(())
}
