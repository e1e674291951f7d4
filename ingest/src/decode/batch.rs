//! The one domain batch every protocol decodes into (`Batch`), and the protocol-neutral
//! [`Outcome`] each surface maps onto its own answer.

use crate::head::input::Input;

/// What one request decoded to, whatever its protocol: what the head gets, and what the sender
/// is told.
#[derive(Debug, Default)]
pub(crate) struct Batch<'a> {
    /// What the head stores once the record is durable.
    pub(crate) input: Input<'a>,
    /// What was accepted and refused.
    pub(crate) outcome: Outcome,
}

/// What a write stored and refused: each surface answers from it in its own terms
/// (`http::error` decides the status).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// What was accepted.
    pub accepted: Accepted,
    /// What was refused, and why.
    pub rejected: Rejections,
    /// Float samples, native histogram samples and exemplars of a non-elected HA replica,
    /// dropped without an error (`crate::ha_tracker`): neither stored nor refused.
    pub deduplicated: u64,
}

/// What a request had accepted, in each protocol's own units; fields a protocol does not use stay 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Float series with accepted samples (remote-write).
    pub series: usize,
    /// Float samples stored (remote-write 2.0: those the request sent, created-timestamp zeros
    /// not counted, as its `X-Prometheus-Remote-Write-Samples-Written` header says).
    pub samples: usize,
    /// Native histogram samples the request sent and were accepted (remote-write).
    pub histograms: usize,
    /// Exemplars accepted (remote-write).
    pub exemplars: usize,
    /// OTLP metric data points accepted.
    pub points: u64,
    /// Log records (OTLP) or entries (Loki push) accepted.
    pub log_records: u64,
    /// OTLP spans accepted.
    pub spans: u64,
}

/// What was refused, and why (the first few reasons, for the response body).
///
/// Each protocol counts in its own units, and the fields it does not use stay 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rejections {
    /// Remote-write series refused whole.
    pub series: usize,
    /// Remote-write float samples refused, with their series or alone.
    pub samples: usize,
    /// Remote-write native histogram samples refused, with their series or alone.
    pub histograms: usize,
    /// Remote-write exemplars refused, with their series or alone.
    pub exemplars: usize,
    /// Remote-write metadata entries refused.
    pub metadata: usize,
    /// OTLP metric data points refused (`partial_success.rejected_data_points`).
    pub points: u64,
    /// Log records (OTLP) or entries (Loki push) refused.
    pub log_records: u64,
    /// OTLP spans refused (`partial_success.rejected_spans`).
    pub spans: u64,
    /// The first few reasons.
    pub reasons: Vec<String>,
    /// Reasons not kept (beyond `MAX_REASONS`).
    pub(crate) omitted: usize,
}

impl Rejections {
    const MAX_REASONS: usize = 10;

    /// True when nothing was refused.
    pub fn is_empty(&self) -> bool {
        self.series == 0
            && self.samples == 0
            && self.histograms == 0
            && self.exemplars == 0
            && self.metadata == 0
            && self.points == 0
            && self.log_records == 0
            && self.spans == 0
    }

    /// Keeps a reason, or counts it as omitted beyond the first few.
    pub(crate) fn add(&mut self, reason: String) {
        if self.reasons.len() < Self::MAX_REASONS {
            self.reasons.push(reason);
        } else {
            self.omitted += 1;
        }
    }

    /// A metadata entry is refused.
    pub(crate) fn reject_metadata(&mut self, reason: String) {
        self.metadata += 1;
        self.add(reason);
    }

    /// Remote-write's one line for the 400 body: counts, then the first reasons.
    pub fn message(&self) -> String {
        let mut m = format!("rejected {} series ({} samples)", self.series, self.samples);
        for (n, what) in [
            (self.histograms, "native histogram samples"),
            (self.exemplars, "exemplars"),
            (self.metadata, "metadata entries"),
        ] {
            if n > 0 {
                m.push_str(&format!(", {n} {what}"));
            }
        }
        m.push_str("; the rest of the request was stored");
        for r in &self.reasons {
            m.push_str("; ");
            m.push_str(r);
        }
        if self.omitted > 0 {
            m.push_str(&format!("; ... and {} more", self.omitted));
        }
        m
    }

    /// The reasons joined with `; ` (OTLP's `partial_success.error_message`, Loki's 400 body).
    pub fn reasons_text(&self) -> String {
        self.reasons.join("; ")
    }
}
