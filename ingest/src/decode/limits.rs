//! The limits every decoder enforces on what a sender controls, and the timestamps storage can
//! name. WAL replay decodes with [`Limits::UNBOUNDED`]: data accepted under older limits must not
//! be lost when an operator lowers them.

/// The timestamps the Parquet layout can name (`storage::layout::storable_timestamp`), as plain
/// bounds so the per-sample check is two comparisons. A test keeps them in step with storage.
/// This one is 0000-01-01T00:00:00Z.
pub const MIN_STORABLE_MS: i64 = -62_167_219_200_000;
/// The last storable millisecond, 9999-12-31T23:59:59.999Z (see [`MIN_STORABLE_MS`]).
pub const MAX_STORABLE_MS: i64 = 253_402_300_799_999;

/// Limits a sender's data must respect.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most labels one series may carry (after the cluster is stamped).
    pub max_labels_per_series: usize,
    /// Longest accepted label name, in bytes.
    pub max_label_name_bytes: usize,
    /// Longest accepted label value, in bytes.
    pub max_label_value_bytes: usize,
}

impl Limits {
    /// What replay uses: no limit at all.
    pub const UNBOUNDED: Limits = Limits {
        max_labels_per_series: usize::MAX,
        max_label_name_bytes: usize::MAX,
        max_label_value_bytes: usize::MAX,
    };
}

/// True when the Parquet layout can store a sample at `t` ms.
#[inline]
pub(crate) fn storable(t: i64) -> bool {
    (MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&t)
}

/// The reason for refusing a timestamp storage cannot name.
pub(crate) fn unstorable(what: &str, t: i64) -> String {
    format!("{what} {t} ms is outside the storable range (years 0000 to 9999)")
}
