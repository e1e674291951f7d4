//! A series' native histogram samples and exemplars: each decoded (or refused with a reason)
//! before the series' labels are known to be valid, kept only if the series is accepted.

use tributary_storage::signals::{Exemplar, ExemplarSeries, HistogramSample, HistogramSeries};
use tributary_storage::types::{Label, Labels};

use super::labels::{describe, valid_label_name};
use crate::decode::Rejections;
use crate::decode::limits::{storable, unstorable};

/// Prometheus's bound on an exemplar's label names and values together, in characters.
pub(crate) const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// The native histogram samples and exemplars of one series, each decoded, or refused with a
/// reason, before the series' labels are known to be valid.
#[derive(Debug, Default)]
pub(super) struct SeriesSignals {
    pub(super) histograms: Vec<Result<HistogramSample, String>>,
    pub(super) exemplars: Vec<Result<Exemplar, String>>,
}

impl SeriesSignals {
    pub(super) fn is_empty(&self) -> bool {
        self.histograms.is_empty() && self.exemplars.is_empty()
    }

    /// The series (final `labels`) was accepted: keeps the valid histogram samples and exemplars,
    /// and refuses the others with their reasons.
    #[inline(never)]
    pub(super) fn accept(
        self,
        labels: &[(&str, &str)],
        rejected: &mut Rejections,
    ) -> (Vec<HistogramSample>, Vec<Exemplar>) {
        let histograms = keep_valid(self.histograms, labels, "native histogram sample", rejected, |r| {
            &mut r.histograms
        });
        let exemplars = keep_valid(self.exemplars, labels, "exemplar", rejected, |r| &mut r.exemplars);
        (histograms, exemplars)
    }
}

/// The valid items; each invalid one is counted (in the `count` field) and given a reason.
fn keep_valid<T>(
    items: Vec<Result<T, String>>,
    labels: &[(&str, &str)],
    what: &str,
    rejected: &mut Rejections,
    count: fn(&mut Rejections) -> &mut usize,
) -> Vec<T> {
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Ok(v) => kept.push(v),
            Err(reason) => {
                *count(rejected) += 1;
                rejected.add(format!("series {}: {what}: {reason}", describe(labels)));
            }
        }
    }
    kept
}

/// Adds an accepted series' histogram samples (sorted by time here) and exemplars to the output,
/// each non-empty list under an owned copy of the series' final labels.
#[inline(never)]
pub(super) fn push_signals(
    labels: &[(&str, &str)],
    mut histograms: Vec<HistogramSample>,
    exemplars: Vec<Exemplar>,
    out_histograms: &mut Vec<HistogramSeries>,
    out_exemplars: &mut Vec<ExemplarSeries>,
) {
    if histograms.is_empty() && exemplars.is_empty() {
        return;
    }
    let labels = Labels::from_sorted_pairs(labels.iter().copied());
    if !histograms.is_empty() {
        histograms.sort_by_key(|h| h.timestamp);
        out_histograms.push(HistogramSeries {
            labels: labels.clone(),
            samples: histograms,
        });
    }
    if !exemplars.is_empty() {
        out_exemplars.push(ExemplarSeries { labels, exemplars });
    }
}

/// Validates an exemplar's labels (any order on the wire) and timestamp; see the module docs.
pub(super) fn check_exemplar(pairs: &[(&[u8], &[u8])], value: f64, timestamp: i64) -> Result<Exemplar, String> {
    let mut labels = Vec::with_capacity(pairs.len());
    let mut chars = 0;
    for &(name, value) in pairs {
        if !valid_label_name(name) {
            return Err(format!(
                "invalid label name {:?} (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                String::from_utf8_lossy(name)
            ));
        }
        let Ok(value) = std::str::from_utf8(value) else {
            return Err(format!(
                "value of label {:?} is not valid UTF-8",
                String::from_utf8_lossy(name)
            ));
        };
        chars += name.len() + value.chars().count();
        if !value.is_empty() {
            // Checked ASCII above.
            labels.push(Label::new(std::str::from_utf8(name).unwrap_or_default(), value));
        }
    }
    if chars > MAX_EXEMPLAR_LABEL_CHARS {
        return Err(format!(
            "labels are {chars} characters long, over the limit of {MAX_EXEMPLAR_LABEL_CHARS}"
        ));
    }
    if !storable(timestamp) {
        return Err(unstorable("timestamp", timestamp));
    }
    labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(format!("duplicate label name {:?}", w[0].name));
    }
    Ok(Exemplar {
        labels: Labels::from_sorted(labels),
        value,
        timestamp,
    })
}

impl Rejections {
    /// A whole series is refused, with everything it carried.
    #[inline(never)]
    pub(super) fn reject_series(
        &mut self,
        reason: &str,
        labels: &[(&str, &str)],
        samples: usize,
        signals: &SeriesSignals,
    ) {
        self.series += 1;
        self.samples += samples;
        self.histograms += signals.histograms.len();
        self.exemplars += signals.exemplars.len();
        self.add(format!("series {}: {reason}", describe(labels)));
    }
}
