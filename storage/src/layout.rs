//! The object-store key layout: the only place keys are built and parsed.
//!
//! # Format (on-disk contract)
//!
//! ```text
//! <table>/<YYYY-MM-DD>/<HH>/<cluster>/<min_ts>-<max_ts>-<rows>-<uuid>.parquet
//! <table>/<YYYY-MM-DD>/day/<cluster>/<min_ts>-<max_ts>-<rows>-<uuid>.parquet
//! metrics/2026-11-21/14/prod-eu-1/1795269600000-1795273185000-86400-019a9b3c-...-....parquet
//! ```
//!
//! - `<table>`: `metrics`, `logs`, `histograms`, `exemplars`, `metadata`, `metrics_5m` or
//!   `metrics_1h` (see [`Table`]).
//! - `<YYYY-MM-DD>/<HH>`: the UTC hour every row of the file falls in ([`Span::Hour`], what a
//!   flush writes), or `<YYYY-MM-DD>/day`: the UTC day every row falls in ([`Span::Day`], what
//!   compaction writes once a day is complete). No file spans two days.
//! - `<cluster>`: the `cluster` label value of every row, percent-escaped so any UTF-8 value is
//!   one safe path segment: bytes other than `A-Z a-z 0-9 - _ .` become `%XX` (uppercase hex),
//!   and the segments `.`/`..` become `%2E`/`%2E%2E`. Rows without a cluster label go under
//!   [`NO_CLUSTER`] (`@none`), which no escaped value can equal because `@` is always escaped.
//! - `<min_ts>-<max_ts>`: the smallest and largest sample timestamp in the file (ms since the
//!   epoch, decimal, may be negative), so readers prune files by time without reading footers.
//! - `<rows>`: the file's row count, so the catalog is built from a listing alone.
//! - `<uuid>`: a UUID v7, hyphenated lowercase. v7 UUIDs sort by creation time, so comparing
//!   them orders files by write order: when two files hold a sample for the same series and
//!   timestamp, the one with the larger UUID wins. A compaction output takes an id just after
//!   its newest input's, not a new one, so merging never moves rows later in write order.
//!
//! Keys are canonical: [`FileKey::parse`] accepts exactly the strings [`FileKey::path`] produces.
//!
//! Beside the tables: `_manifest/<version>.json`, `_manifest/<version>.checkpoint.json` and
//! `_manifest/_last_checkpoint` (the manifest, format in `crate::manifest`) and `_compactor/lease-<term>.json` (the compactor lease, in
//! `crate::compactor`) and `_ha/<cluster>/<term>.json` (a cluster's HA-pair election, in
//! `crate::election`; the cluster escaped as above). Versions and terms are 20-digit
//! zero-padded decimals, so they sort.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, Timelike};
use object_store::path::Path;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use uuid::Uuid;

use crate::types::{TimeRange, TimestampMs};
use crate::{Error, Result};

/// Milliseconds in one partition hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The cluster segment for rows that have no `cluster` label.
pub const NO_CLUSTER: &str = "@none";

/// The hour segment of a [`Span::Day`] key.
const DAY_SEGMENT: &str = "day";

/// Everything but `A-Z a-z 0-9 - _ .` is escaped.
const CLUSTER_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// A kind of data with its own key prefix and schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Float samples, schema in `crate::schema`.
    Metrics,
    /// Log records ([`crate::signals::LogRecord`]), schema in `table::logs`.
    Logs,
    /// Native-histogram samples ([`crate::signals::HistogramSample`]), schema in `table::histograms`.
    Histograms,
    /// Exemplars ([`crate::signals::Exemplar`]), schema in `table::exemplars`.
    Exemplars,
    /// Metric metadata ([`crate::signals::MetricMetadata`]), schema in `table::metadata`.
    Metadata,
    /// 5-minute rollups of the metrics ([`crate::rollup`]), schema in `table::rollups`.
    Metrics5m,
    /// 1-hour rollups of the metrics ([`crate::rollup`]), schema in `table::rollups`.
    Metrics1h,
    /// 1-day rollups of the metrics ([`crate::rollup`]), schema in `table::rollups`.
    Metrics1d,
    /// Trace spans ([`crate::signals::Span`]), schema in `table::spans`.
    Spans,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 9] = [
        Table::Metrics,
        Table::Logs,
        Table::Histograms,
        Table::Exemplars,
        Table::Metadata,
        Table::Metrics5m,
        Table::Metrics1h,
        Table::Metrics1d,
        Table::Spans,
    ];

    /// The first key segment of every file of this table.
    pub fn dir(self) -> &'static str {
        match self {
            Table::Metrics => "metrics",
            Table::Logs => "logs",
            Table::Histograms => "histograms",
            Table::Exemplars => "exemplars",
            Table::Metadata => "metadata",
            Table::Metrics5m => "metrics_5m",
            Table::Metrics1h => "metrics_1h",
            Table::Metrics1d => "metrics_1d",
            Table::Spans => "spans",
        }
    }

    /// The listing prefix that holds every file of this table.
    pub fn prefix(self) -> Path {
        Path::from(self.dir())
    }

    fn from_dir(s: &str) -> Option<Self> {
        match s {
            "metrics" => Some(Table::Metrics),
            "logs" => Some(Table::Logs),
            "histograms" => Some(Table::Histograms),
            "exemplars" => Some(Table::Exemplars),
            "metadata" => Some(Table::Metadata),
            "metrics_5m" => Some(Table::Metrics5m),
            "metrics_1h" => Some(Table::Metrics1h),
            "metrics_1d" => Some(Table::Metrics1d),
            "spans" => Some(Table::Spans),
            _ => None,
        }
    }
}

/// A UTC hour, counted from the Unix epoch. Partitions keys and bounds every file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hour(pub i64);

impl Hour {
    /// The hour holding `ts`.
    pub fn of(ts: TimestampMs) -> Self {
        Hour(ts.div_euclid(HOUR_MS))
    }

    /// First millisecond of the hour.
    pub fn start_ms(self) -> TimestampMs {
        self.0.saturating_mul(HOUR_MS)
    }

    /// Last millisecond of the hour (inclusive).
    pub fn end_ms(self) -> TimestampMs {
        self.start_ms().saturating_add(HOUR_MS - 1)
    }

    /// Hour 00 of this hour's UTC day.
    pub fn day_start(self) -> Self {
        Hour(self.0.div_euclid(24) * 24)
    }

    /// The hour as a closed millisecond range.
    pub fn range(self) -> TimeRange {
        TimeRange::new(self.start_ms(), self.end_ms())
    }

    /// The calendar date and hour of day, if the year is one keys can hold (0000..=9999).
    fn civil(self) -> Option<(NaiveDate, u32)> {
        let dt = chrono::DateTime::from_timestamp(self.0.checked_mul(3600)?, 0)?;
        (0..=9999).contains(&dt.year()).then(|| (dt.date_naive(), dt.hour()))
    }

    fn from_civil(date: NaiveDate, hour: u32) -> Self {
        let secs = date.and_hms_opt(hour, 0, 0).map_or(0, |d| d.and_utc().timestamp());
        Hour(secs.div_euclid(3600))
    }
}

/// How much time one file may cover: the second and third key segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Span {
    /// One UTC hour (`<date>/<HH>`): flushed files and hourly compactions.
    Hour,
    /// One UTC day (`<date>/day`): compacted files of a completed day.
    Day,
}

/// Hours a [`Span::Day`] file covers beyond its first hour: how far back a reader indexed by
/// first hour must look.
pub const SPAN_LOOKBACK_HOURS: i64 = 23;

/// True when `ts` can be stored: its UTC year is within 0000..=9999, the range keys can name.
pub fn storable_timestamp(ts: TimestampMs) -> bool {
    Hour::of(ts).civil().is_some()
}

/// Escapes a cluster label value (`""` = no cluster) into one path segment.
pub fn escape_cluster(cluster: &str) -> String {
    match cluster {
        "" => NO_CLUSTER.to_string(),
        "." => "%2E".to_string(),
        ".." => "%2E%2E".to_string(),
        c => utf8_percent_encode(c, CLUSTER_ESCAPE).to_string(),
    }
}

/// Inverse of [`escape_cluster`]: `Some("")` for the no-cluster placeholder, `None` when the
/// segment is not one `escape_cluster` could have produced.
pub fn unescape_cluster(segment: &str) -> Option<String> {
    if segment == NO_CLUSTER {
        return Some(String::new());
    }
    let value = percent_decode_str(segment).decode_utf8().ok()?.into_owned();
    (!value.is_empty() && escape_cluster(&value) == segment).then_some(value)
}

/// Everything a key says about its file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// The table the file belongs to.
    pub table: Table,
    /// The first UTC hour of the file's span (hour 00 of the day for a [`Span::Day`] file).
    pub hour: Hour,
    /// Whether the file covers one hour or one day.
    pub span: Span,
    /// The `cluster` label of every row; `""` when the rows have none.
    pub cluster: String,
    /// Smallest row timestamp (ms).
    pub min_ts: TimestampMs,
    /// Largest row timestamp (ms).
    pub max_ts: TimestampMs,
    /// Rows in the file.
    pub rows: u64,
    /// UUID v7: orders files by write time.
    pub id: Uuid,
}

impl FileKey {
    /// A key for a new file of `table`: an hour file when both timestamps lie in one UTC hour,
    /// a day file when they lie in one UTC day. Fails when the timestamps are not ordered, lie
    /// in different days, or fall outside the years keys can name.
    pub fn new(table: Table, cluster: &str, min_ts: TimestampMs, max_ts: TimestampMs, rows: u64) -> Result<Self> {
        let first = Hour::of(min_ts);
        let (hour, span) = if Hour::of(max_ts) == first {
            (first, Span::Hour)
        } else {
            (first.day_start(), Span::Day)
        };
        if min_ts > max_ts || hour.civil().is_none() || (span == Span::Day && Hour::of(max_ts).day_start() != hour) {
            return Err(Error::InvalidData {
                reason: format!("file time span {min_ts}..={max_ts} must lie within one UTC day of years 0000-9999"),
            });
        }
        Ok(Self {
            table,
            hour,
            span,
            cluster: cluster.to_string(),
            min_ts,
            max_ts,
            rows,
            id: Uuid::now_v7(),
        })
    }

    /// This key with an id that sorts just after `newest` (same v7 millisecond, larger random
    /// bits), for a merge output whose newest input is `newest`: the output keeps its inputs'
    /// place in write order instead of taking the merge's own time. A file written after the
    /// inputs but before the merge stays newer than the output (its rows win), and a rollup
    /// computed before late data stays older than that data, however often it is merged.
    pub(crate) fn after_in_write_order(mut self, newest: Uuid) -> Self {
        // rand_b is the low 62 bits; a step of 1..=2^32 keeps the id unique among merges of the
        // same inputs and never carries into the variant bits but once in 2^30.
        const RAND_B: u128 = (1 << 62) - 1;
        let step = 1 + u128::from(Uuid::now_v7().as_u128() as u32);
        let bits = newest.as_u128();
        self.id = if (bits & RAND_B) + step <= RAND_B {
            Uuid::from_u128(bits + step)
        } else {
            Uuid::now_v7()
        };
        self
    }

    /// `[min_ts, max_ts]`.
    pub fn time_range(&self) -> TimeRange {
        TimeRange::new(self.min_ts, self.max_ts)
    }

    /// The object key.
    pub fn path(&self) -> Path {
        // `new`/`parse` guarantee a civil hour; the fallback keeps this total without panicking.
        let (date, hh) = self.hour.civil().unwrap_or((NaiveDate::MIN, 0));
        let mut key = String::with_capacity(128);
        let hh = match self.span {
            Span::Hour => format!("{hh:02}"),
            Span::Day => DAY_SEGMENT.to_string(),
        };
        let _ = write!(
            key,
            "{}/{:04}-{:02}-{:02}/{}/{}/{}-{}-{}-{}.parquet",
            self.table.dir(),
            date.year(),
            date.month(),
            date.day(),
            hh,
            escape_cluster(&self.cluster),
            self.min_ts,
            self.max_ts,
            self.rows,
            self.id.hyphenated()
        );
        // Every segment is non-empty, not `.`/`..` and free of control characters and `/`.
        Path::parse(&key).unwrap_or_else(|_| Path::from(key.as_str()))
    }

    /// Parses a key [`FileKey::path`] produced; `None` for anything else (foreign or temporary
    /// objects are ignored, never guessed at).
    pub fn parse(path: &Path) -> Option<Self> {
        let raw = path.as_ref();
        let mut parts = raw.split('/');
        let table = Table::from_dir(parts.next()?)?;
        let date = parts.next()?;
        let hh = parts.next()?;
        let cluster = unescape_cluster(parts.next()?)?;
        let name = parts.next()?.strip_suffix(".parquet")?;
        if parts.next().is_some() || date.len() != 10 {
            return None;
        }
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let (hour, span) = if hh == DAY_SEGMENT {
            (Hour::from_civil(date, 0), Span::Day)
        } else if hh.len() == 2 {
            (Hour::from_civil(date, hh.parse().ok().filter(|h| *h < 24)?), Span::Hour)
        } else {
            return None;
        };

        // name = <min>-<max>-<rows>-<uuid 36 chars>; min and max may carry a leading '-'.
        let (nums, id) = name.split_at_checked(name.len().checked_sub(36)?)?;
        let id = Uuid::parse_str(id).ok()?;
        let nums = nums.strip_suffix('-')?;
        let (min_s, rest) = split_signed(nums)?;
        let (max_s, rows_s) = split_signed(rest)?;
        let key = FileKey {
            table,
            hour,
            span,
            cluster,
            min_ts: min_s.parse().ok()?,
            max_ts: max_s.parse().ok()?,
            rows: rows_s.parse().ok()?,
            id,
        };
        let covers = |ts| match span {
            Span::Hour => Hour::of(ts) == hour,
            Span::Day => Hour::of(ts).day_start() == hour,
        };
        let valid = key.min_ts <= key.max_ts && covers(key.min_ts) && covers(key.max_ts);
        (valid && key.path().as_ref() == raw).then_some(key)
    }
}

/// The prefix of every manifest object (see `crate::manifest`).
pub(crate) fn manifest_prefix() -> Path {
    Path::from(MANIFEST_DIR)
}

/// `_manifest/<version, 20 digits>.json`: the change that made `version`.
pub(crate) fn manifest_path(version: u64) -> Path {
    Path::from(format!("{MANIFEST_DIR}/{version:020}.json"))
}

/// `_manifest/<version, 20 digits>.checkpoint.json`: the whole state at `version`.
pub(crate) fn checkpoint_path(version: u64) -> Path {
    Path::from(format!("{MANIFEST_DIR}/{version:020}.checkpoint.json"))
}

/// `_manifest/_last_checkpoint`: the newest checkpoint's version (a hint).
pub(crate) fn last_checkpoint_path() -> Path {
    Path::from(format!("{MANIFEST_DIR}/_last_checkpoint"))
}

/// A manifest object's kind and version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ManifestObject {
    /// A [`manifest_path`].
    Delta(u64),
    /// A [`checkpoint_path`].
    Checkpoint(u64),
}

/// What a [`manifest_path`] or [`checkpoint_path`] names.
pub(crate) fn parse_manifest_path(path: &Path) -> Option<ManifestObject> {
    let name = path.as_ref().strip_prefix(MANIFEST_DIR)?.strip_prefix('/')?;
    let (digits, checkpoint) = match name.strip_suffix(".checkpoint.json") {
        Some(d) => (d, true),
        None => (name.strip_suffix(".json")?, false),
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = digits.parse().ok()?;
    Some(if checkpoint {
        ManifestObject::Checkpoint(v)
    } else {
        ManifestObject::Delta(v)
    })
}

/// `_compactor/lease-<term, 20 digits>.json`: one compactor lease term (see `crate::compactor`).
pub(crate) fn lease_path(term: u64) -> Path {
    Path::from(format!("{LEASE_DIR}/lease-{term:020}.json"))
}

/// The prefix of every lease object.
pub(crate) fn lease_prefix() -> Path {
    Path::from(LEASE_DIR)
}

/// The term a [`lease_path`] names.
pub(crate) fn parse_lease_path(path: &Path) -> Option<u64> {
    let name = path.as_ref().strip_prefix(LEASE_DIR)?.strip_prefix("/lease-")?;
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `_ha/<cluster, escaped>/<term, 20 digits>.json`: one term of a cluster's HA-pair election
/// (see `crate::election`). The cluster is escaped as in data-file keys ([`escape_cluster`]).
pub(crate) fn election_path(cluster: &str, term: u64) -> Path {
    let key = format!("{}/{term:020}.json", election_dir(cluster));
    Path::parse(&key).unwrap_or_else(|_| Path::from(key.as_str()))
}

/// The prefix of every term of `cluster`'s election.
pub(crate) fn election_prefix(cluster: &str) -> Path {
    let key = election_dir(cluster);
    Path::parse(&key).unwrap_or_else(|_| Path::from(key.as_str()))
}

fn election_dir(cluster: &str) -> String {
    format!("{ELECTION_DIR}/{}", escape_cluster(cluster))
}

/// The cluster and term an [`election_path`] names; `None` for anything else.
pub(crate) fn parse_election_path(path: &Path) -> Option<(String, u64)> {
    let rest = path.as_ref().strip_prefix(ELECTION_DIR)?.strip_prefix('/')?;
    let (cluster, name) = rest.split_once('/')?;
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((unescape_cluster(cluster)?, digits.parse().ok()?))
}

const MANIFEST_DIR: &str = "_manifest";
const LEASE_DIR: &str = "_compactor";
const ELECTION_DIR: &str = "_ha";

/// Splits `"<signed int>-<rest>"` at the separator after the first number.
fn split_signed(s: &str) -> Option<(&str, &str)> {
    let skip = usize::from(s.starts_with('-'));
    let at = s[skip..].find('-')? + skip;
    Some((&s[..at], &s[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_look_like_the_documented_format() {
        let mut k = FileKey::new(Table::Metrics, "prod-eu", 1_795_269_600_000, 1_795_273_185_000, 86_400).unwrap();
        k.id = Uuid::parse_str("019a9b3c-0000-7000-8000-000000000001").unwrap();
        assert_eq!(
            k.path().as_ref(),
            "metrics/2026-11-21/14/prod-eu/1795269600000-1795273185000-86400-019a9b3c-0000-7000-8000-000000000001.parquet"
        );
        assert_eq!(FileKey::parse(&k.path()), Some(k));
    }

    #[test]
    fn election_keys_escape_the_cluster_and_round_trip() {
        assert_eq!(
            election_path("prod-eu", 7).as_ref(),
            "_ha/prod-eu/00000000000000000007.json"
        );
        assert_eq!(election_prefix("a/b c").as_ref(), "_ha/a%2Fb%20c");
        for cluster in ["prod-eu", "a/b c", "..", "ünï"] {
            let key = election_path(cluster, 12);
            assert_eq!(parse_election_path(&key), Some((cluster.to_string(), 12)), "{key}");
            assert!(key.as_ref().starts_with(election_prefix(cluster).as_ref()));
        }
        for foreign in [
            "_ha/x/12.json",
            "_ha/x/00000000000000000012.tmp",
            "_ha/%zz/00000000000000000012.json",
        ] {
            assert_eq!(parse_election_path(&Path::parse(foreign).unwrap()), None, "{foreign}");
        }
    }

    #[test]
    fn manifest_and_lease_keys_round_trip() {
        assert_eq!(manifest_path(42).as_ref(), "_manifest/00000000000000000042.json");
        assert_eq!(parse_manifest_path(&manifest_path(42)), Some(ManifestObject::Delta(42)));
        assert_eq!(
            parse_manifest_path(&checkpoint_path(64)),
            Some(ManifestObject::Checkpoint(64))
        );
        assert_eq!(
            checkpoint_path(64).as_ref(),
            "_manifest/00000000000000000064.checkpoint.json"
        );
        assert_eq!(parse_manifest_path(&last_checkpoint_path()), None);
        assert_eq!(parse_manifest_path(&Path::from("_manifest/42.json")), None);
        assert_eq!(lease_path(7).as_ref(), "_compactor/lease-00000000000000000007.json");
        assert_eq!(parse_lease_path(&lease_path(7)), Some(7));
        assert_eq!(parse_lease_path(&Path::from("_compactor/x.json")), None);
        assert!(FileKey::parse(&manifest_path(1)).is_none());
    }

    #[test]
    fn clusters_escape_into_one_safe_segment() {
        assert_eq!(escape_cluster("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(escape_cluster(".."), "%2E%2E");
        assert_eq!(escape_cluster(""), NO_CLUSTER);
        assert_eq!(escape_cluster("@none"), "%40none");
        assert_eq!(unescape_cluster(NO_CLUSTER).as_deref(), Some(""));
        assert_eq!(unescape_cluster("%2fx"), None, "non-canonical escapes are rejected");
        assert_eq!(unescape_cluster("a%2Fb"), Some("a/b".into()));
    }

    #[test]
    fn a_merge_output_sorts_just_after_its_newest_input() {
        let first = FileKey::new(Table::Metrics, "c", 0, 1, 1).unwrap();
        let newest = FileKey::new(Table::Metrics, "c", 0, 1, 1).unwrap();
        let later = FileKey::new(Table::Metrics, "c", 0, 1, 1).unwrap();
        let merged = FileKey::new(Table::Metrics, "c", 0, 1, 2)
            .unwrap()
            .after_in_write_order(newest.id);
        assert!(first.id < newest.id && newest.id < merged.id, "{merged:?}");
        assert_eq!(merged.id.get_version_num(), 7);
        assert_eq!(merged.id.get_timestamp(), newest.id.get_timestamp(), "same millisecond");
        if later.id.get_timestamp() != newest.id.get_timestamp() {
            assert!(merged.id < later.id, "a file written after the inputs stays later");
        }
        assert_eq!(FileKey::parse(&merged.path()).unwrap(), merged);
    }

    #[test]
    fn negative_timestamps_and_foreign_keys() {
        let k = FileKey::new(Table::Metrics, "", -3_599_999, -5, 2).unwrap();
        assert_eq!(k.hour, Hour(-1));
        assert!(
            k.path()
                .as_ref()
                .starts_with("metrics/1969-12-31/23/@none/-3599999--5-2-")
        );
        assert_eq!(FileKey::parse(&k.path()), Some(k));
        for bad in [
            "metrics/2026-11-21/14/x/1-2-3.parquet",
            "logs/2026-11-21/14/x/a.parquet",
            "metrics/2026-11-21/14/x/y/1-2-3-019a9b3c-0000-7000-8000-000000000001.parquet",
            "metrics/2026-11-21/15/x/1795269600000-1795269600000-1-019a9b3c-0000-7000-8000-000000000001.parquet",
            "metrics/2026-11-21/14/x/+1795269600000-1795269600000-1-019a9b3c-0000-7000-8000-000000000001.parquet",
        ] {
            assert_eq!(FileKey::parse(&Path::parse(bad).unwrap()), None, "{bad}");
        }
        let day = FileKey::new(Table::Metrics, "c", 0, HOUR_MS, 1).unwrap();
        assert_eq!(
            (day.span, day.hour),
            (Span::Day, Hour(0)),
            "spans two hours: a day file"
        );
        assert!(day.path().as_ref().starts_with("metrics/1970-01-01/day/c/0-3600000-1-"));
        assert_eq!(FileKey::parse(&day.path()), Some(day));
        let late = FileKey::new(Table::Metrics, "c", 5 * HOUR_MS, 24 * HOUR_MS - 1, 1).unwrap();
        assert_eq!(
            (late.span, late.hour),
            (Span::Day, Hour(0)),
            "a day file starts at hour 00"
        );
        assert_eq!(FileKey::parse(&late.path()), Some(late));
        assert!(
            FileKey::new(Table::Metrics, "c", 0, 24 * HOUR_MS, 1).is_err(),
            "spans two days"
        );
        assert!(
            FileKey::parse(
                &Path::parse("metrics/1970-01-02/day/c/0-3600000-1-019a9b3c-0000-7000-8000-000000000001.parquet")
                    .unwrap()
            )
            .is_none(),
            "a day file outside its day"
        );
        assert!(
            FileKey::new(Table::Metrics, "c", i64::MAX - 1, i64::MAX, 1).is_err(),
            "year beyond 9999"
        );
        assert!(!storable_timestamp(i64::MIN));
    }

    /// Timestamps across years 0000..=9999.
    fn civil_ts() -> impl Strategy<Value = i64> {
        -62_167_219_200_000i64..253_402_300_799_999i64
    }

    proptest! {
        #[test]
        fn keys_round_trip(cluster in any::<String>(), a in civil_ts(), len in 0i64..24 * HOUR_MS, rows in any::<u64>()) {
            let min = a;
            let max = (a + len).min(Hour(Hour::of(a).day_start().0 + 23).end_ms());
            let k = FileKey::new(Table::Metrics, &cluster, min, max, rows).unwrap();
            let path = k.path();
            prop_assert_eq!(Path::parse(path.as_ref()).unwrap(), path.clone());
            prop_assert_eq!(path.parts().count(), 5);
            prop_assert_eq!(FileKey::parse(&path), Some(k));
        }

        #[test]
        fn escaping_round_trips(cluster in any::<String>()) {
            let seg = escape_cluster(&cluster);
            prop_assert!(seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.%@".contains(&b)));
            prop_assert_eq!(unescape_cluster(&seg), Some(cluster));
        }
    }
}
