//! The head's other signals: log records, native histograms, exemplars and metric metadata.
//!
//! They follow the float samples' lifecycle exactly — appended under the ingester's gate after
//! their WAL record is durable, frozen with the samples into the same [`super::Frozen`] block, and
//! dropped only once that block's Parquet files are stored — so one flush covers one WAL cut for
//! every signal. They are far fewer than samples, so a single lock suffices.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tributary_storage::read::{
    Direction, LineHint, LogRequest, PatternRequest, SelectRequest, SpanRequest, VolumeRequest, VolumeSum, record_level,
};
use tributary_storage::signals::{ExemplarSeries, HistogramSeries, LogRecord, MetricMetadata, Span, cmp_stream};
use tributary_storage::types::{Labels, Matcher, TimeRange, matches_all};

/// One block's worth of non-float signals.
#[derive(Debug, Default)]
pub struct SignalBlock {
    /// Log records (OTLP logs, Loki push).
    pub logs: Vec<LogRecord>,
    /// Native histogram samples by series.
    pub histograms: Vec<HistogramSeries>,
    /// Exemplars by series.
    pub exemplars: Vec<ExemplarSeries>,
    /// Metric metadata, deduplicated.
    pub metadata: BTreeSet<MetricMetadata>,
    /// Trace spans (OTLP traces).
    pub spans: Vec<Span>,
}

impl SignalBlock {
    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
            && self.histograms.is_empty()
            && self.exemplars.is_empty()
            && self.metadata.is_empty()
            && self.spans.is_empty()
    }

    /// Histogram samples plus exemplars plus log records: what a flush will write beside samples.
    pub fn items(&self) -> usize {
        self.logs.len()
            + self.spans.len()
            + self.histograms.iter().map(|h| h.samples.len()).sum::<usize>()
            + self.exemplars.iter().map(|e| e.exemplars.len()).sum::<usize>()
    }

    /// Merges repeated label sets (one entry per request today) and sorts by time, so each
    /// series is written once with ordered samples, the later write winning a repeated timestamp.
    fn compact(&mut self) {
        self.histograms = merge_histograms(std::mem::take(&mut self.histograms));
        self.exemplars = merge_by_labels(
            std::mem::take(&mut self.exemplars),
            |e| (e.labels, e.exemplars),
            |labels, mut exemplars| {
                exemplars.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.value.total_cmp(&b.value)));
                exemplars.dedup();
                ExemplarSeries { labels, exemplars }
            },
        );
        self.logs
            .sort_by(|a, b| cmp_stream(&a.labels, &b.labels).then(a.timestamp.cmp(&b.timestamp)));
        // Spans by cluster, then trace: a flush batch holds few clusters (few files), sorted as
        // the files will be.
        self.spans
            .sort_unstable_by(|a, b| a.cluster.cmp(&b.cluster).then_with(|| a.cmp(b)));
        // Then a cluster's records together, so a flush batch ([`SignalBlock::log_batches`])
        // holds few clusters and writes few files. A rank per cluster, looked up once per
        // record: this runs at the freeze, under the ingester's gate.
        // Records of a stream are adjacent by now: a rank is looked up once per stream.
        let mut ranks: HashMap<&str, u32> = HashMap::new();
        let mut last: Option<(&Arc<Labels>, u32)> = None;
        let mut keys = Vec::with_capacity(self.logs.len());
        for r in &self.logs {
            let rank = match last {
                Some((labels, rank)) if Arc::ptr_eq(labels, &r.labels) => rank,
                _ => {
                    let cluster = r.labels.get(tributary_storage::types::CLUSTER).unwrap_or("");
                    let next = ranks.len() as u32;
                    let rank = *ranks.entry(cluster).or_insert(next);
                    last = Some((&r.labels, rank));
                    rank
                }
            };
            keys.push(rank);
        }
        let mut keyed: Vec<(u32, LogRecord)> = keys.into_iter().zip(std::mem::take(&mut self.logs)).collect();
        keyed.sort_by_key(|(rank, _)| *rank);
        self.logs = keyed.into_iter().map(|(_, r)| r).collect();
    }

    /// The log records in consecutive slices of about `max_bytes` each (as `log_row_size`
    /// counts; at least one record each): what a flush writes at a time, so its Arrow and
    /// Parquet buffers stay within a batch rather than the whole block.
    pub fn log_batches(&self, max_bytes: usize) -> impl Iterator<Item = &[LogRecord]> {
        slices(&self.logs, max_bytes, log_row_size)
    }

    /// The spans in consecutive slices of about `max_bytes` each (as [`Span::size`] counts; at
    /// least one span each), a cluster's spans together: what a flush writes at a time.
    pub fn span_batches(&self, max_bytes: usize) -> impl Iterator<Item = &[Span]> {
        slices(&self.spans, max_bytes, Span::size)
    }

    /// Spans `req` admits, appended to `out` unsorted.
    pub fn spans_matching(&self, req: &SpanRequest, out: &mut Vec<Span>) {
        out.extend(self.spans.iter().filter(|s| req.admits(s)).cloned());
    }

    /// Log records matching `req` (matchers, time, hints), appended to `out` unsorted; with a
    /// limit, only this block's first `limit` distinct ones in the requested direction.
    pub fn logs_matching(&self, req: &LogRequest, out: &mut Vec<LogRecord>) {
        // Records are chosen by reference and only those kept are copied: a limited read of a
        // long range (every LogQL log query, every chunk of a scan) would otherwise copy every
        // record of the range to keep a few.
        let mut refs: Vec<&LogRecord> = self
            .logs
            .iter()
            .filter(|r| {
                r.timestamp >= req.start
                    && r.timestamp < req.end
                    && matches_all(&req.matchers, &r.labels)
                    && req.line_hints.iter().all(|h| match h {
                        LineHint::Contains(s) => r.body.contains(s.as_str()),
                        LineHint::NotContains(s) => !r.body.contains(s.as_str()),
                    })
            })
            .collect();
        if let Some(limit) = req.limit {
            keep_first(&mut refs, limit, req.direction);
        }
        out.extend(refs.into_iter().cloned());
    }

    /// What pattern clustering needs of the records matching `req` (matchers and time): this
    /// block's newest `req.max_lines` as `(timestamp, level, body)`, appended to `out`
    /// unsorted; true when the block holds more. Only bodies are copied, so the block is held
    /// for a walk and a copy, not for the clustering. Copies of a record (a client's retry)
    /// are not told apart: they count as the lines they were pushed as.
    pub fn pattern_lines_matching(&self, req: &PatternRequest, out: &mut Vec<(i64, &'static str, String)>) -> bool {
        let logs = &req.logs;
        let mut refs: Vec<&LogRecord> = self
            .logs
            .iter()
            .filter(|r| r.timestamp >= logs.start && r.timestamp < logs.end && matches_all(&logs.matchers, &r.labels))
            .collect();
        let more = refs.len() > req.max_lines;
        if more {
            refs.select_nth_unstable_by(req.max_lines, |a, b| b.timestamp.cmp(&a.timestamp));
            refs.truncate(req.max_lines);
        }
        out.extend(refs.into_iter().map(|r| (r.timestamp, record_level(r), r.body.clone())));
        more
    }

    /// Adds the body bytes and records of matching records in `req`'s range to `sum` (a copy
    /// delivered twice counts twice, as the contract allows).
    pub fn volume_matching(&self, req: &VolumeRequest, sum: &mut VolumeSum) {
        // Matchers are decided once per stream, and a run of records of one stream in one
        // bucket (a pushed batch) is added to the sum once: records of a stream mostly come in
        // runs, and a regex or a label-set hash per record would dominate.
        let mut decided: HashMap<&Labels, bool> = HashMap::new();
        let mut last: Option<(&Arc<Labels>, bool)> = None;
        let mut run: Option<(&Arc<Labels>, u32, u64, u64)> = None;
        for r in &self.logs {
            if r.timestamp < req.logs.start || r.timestamp >= req.logs.end {
                continue;
            }
            let keep = match last {
                Some((l, keep)) if same_stream(l, &r.labels) => keep,
                _ => {
                    let keep = *decided
                        .entry(&*r.labels)
                        .or_insert_with(|| matches_all(&req.logs.matchers, &r.labels));
                    last = Some((&r.labels, keep));
                    keep
                }
            };
            if !keep {
                continue;
            }
            let bucket = req.bucket_of(r.timestamp);
            match &mut run {
                Some((l, b, bytes, lines)) if *b == bucket && same_stream(l, &r.labels) => {
                    *bytes += r.body.len() as u64;
                    *lines += 1;
                }
                _ => {
                    if let Some((l, b, bytes, lines)) = run {
                        sum.add(l, b, bytes, lines);
                    }
                    run = Some((&r.labels, bucket, r.body.len() as u64, 1));
                }
            }
        }
        if let Some((l, b, bytes, lines)) = run {
            sum.add(l, b, bytes, lines);
        }
    }

    /// Stream label sets with a record in `req`'s range, appended to `out` (may repeat).
    pub fn streams_matching(&self, req: &LogRequest, out: &mut Vec<Labels>) {
        for r in &self.logs {
            if r.timestamp >= req.start
                && r.timestamp < req.end
                && out.last() != Some(&*r.labels)
                && matches_all(&req.matchers, &r.labels)
            {
                out.push(Labels::clone(&r.labels));
            }
        }
    }

    /// Histogram series matching `req` (matchers and `only`), with their samples in its range,
    /// appended to `out` in append order (a series may repeat; see [`merge_histograms`]).
    pub(crate) fn histograms_matching(&self, req: &SelectRequest, out: &mut Vec<HistogramSeries>) {
        for s in &self.histograms {
            if !matches_all(&req.matchers, &s.labels) || !req.admits(&s.labels) {
                continue;
            }
            let samples: Vec<_> = s
                .samples
                .iter()
                .filter(|h| req.range.contains(h.timestamp))
                .cloned()
                .collect();
            if !samples.is_empty() {
                out.push(HistogramSeries {
                    labels: s.labels.clone(),
                    samples,
                });
            }
        }
    }

    /// Exemplars of series matching any selector, within `range`.
    pub fn exemplars_matching(&self, selectors: &[Vec<Matcher>], range: TimeRange, out: &mut Vec<ExemplarSeries>) {
        for s in &self.exemplars {
            if !selectors.iter().any(|m| matches_all(m, &s.labels)) {
                continue;
            }
            let ex: Vec<_> = s
                .exemplars
                .iter()
                .filter(|e| range.contains(e.timestamp))
                .cloned()
                .collect();
            if !ex.is_empty() {
                out.push(ExemplarSeries {
                    labels: s.labels.clone(),
                    exemplars: ex,
                });
            }
        }
    }
}

fn merge_by_labels<T, I>(
    items: Vec<T>,
    split: impl Fn(T) -> (Labels, Vec<I>),
    build: impl Fn(Labels, Vec<I>) -> T,
) -> Vec<T> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut merged: Vec<(Labels, Vec<I>)> = Vec::new();
    for item in items {
        let (labels, parts) = split(item);
        match index.get(&labels) {
            Some(&i) => merged[i].1.extend(parts),
            None => {
                index.insert(labels.clone(), merged.len());
                merged.push((labels, parts));
            }
        }
    }
    merged.into_iter().map(|(l, p)| build(l, p)).collect()
}

/// One entry per label set, samples sorted by time, the later-appended sample winning a
/// repeated timestamp: `found` must be in append order (older blocks first).
pub(crate) fn merge_histograms(found: Vec<HistogramSeries>) -> Vec<HistogramSeries> {
    merge_by_labels(
        found,
        |h| (h.labels, h.samples),
        |labels, mut samples| {
            sort_dedup_by(&mut samples, |s| s.timestamp);
            HistogramSeries { labels, samples }
        },
    )
}

/// Stable sort by key, keeping the last of equal keys.
fn sort_dedup_by<T>(v: &mut Vec<T>, key: impl Fn(&T) -> i64) {
    v.reverse();
    v.sort_by_key(&key);
    v.dedup_by_key(|x| key(x));
}

/// `items` in consecutive slices of about `max_bytes` each as `size` counts, at least one item
/// each.
fn slices<T>(items: &[T], max_bytes: usize, size: fn(&T) -> usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len() && (n == 0 || bytes < max_bytes) {
            bytes += size(&rest[n]);
            n += 1;
        }
        let (batch, later) = rest.split_at(n);
        rest = later;
        Some(batch)
    })
}

/// The active (writable) signals.
#[derive(Debug, Default)]
pub(crate) struct ActiveSignals {
    block: Mutex<SignalBlock>,
    /// One copy of each stream's label set in `block`: a stream's records from every write
    /// share it (a decoder shares one copy within a write only).
    streams: Mutex<HashSet<Arc<Labels>>>,
    items: AtomicUsize,
    log_bytes: AtomicUsize,
}

impl ActiveSignals {
    pub(crate) fn append(&self, mut add: SignalBlock) {
        if add.is_empty() {
            return;
        }
        let items = add.items();
        // Spans count with log records: both are bulky, and one budget bounds them. Counted
        // before the labels are shared across writes, which only lowers what they hold.
        let bytes: usize =
            add.logs.iter().map(log_size).sum::<usize>() + add.spans.iter().map(Span::size).sum::<usize>();
        if !add.logs.is_empty() {
            let mut streams = self.streams.lock();
            let mut last: Option<(Arc<Labels>, Arc<Labels>)> = None;
            for r in &mut add.logs {
                match &last {
                    Some((sent, kept)) if Arc::ptr_eq(sent, &r.labels) => r.labels = kept.clone(),
                    _ => {
                        let kept = match streams.get(&r.labels) {
                            Some(kept) => kept.clone(),
                            None => {
                                streams.insert(r.labels.clone());
                                r.labels.clone()
                            }
                        };
                        let sent = std::mem::replace(&mut r.labels, kept.clone());
                        last = Some((sent, kept));
                    }
                }
            }
        }
        let mut b = self.block.lock();
        b.logs.extend(add.logs);
        b.spans.extend(add.spans);
        b.histograms.extend(add.histograms);
        b.exemplars.extend(add.exemplars);
        b.metadata.extend(add.metadata);
        drop(b);
        self.items.fetch_add(items, Ordering::Relaxed);
        self.log_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.block.lock().is_empty()
    }

    pub(crate) fn items(&self) -> usize {
        self.items.load(Ordering::Relaxed)
    }

    /// Approximate bytes of log records and spans held.
    pub(crate) fn log_bytes(&self) -> usize {
        self.log_bytes.load(Ordering::Relaxed)
    }

    /// Takes everything, ready to be written.
    pub(crate) fn take(&self) -> SignalBlock {
        let mut b = std::mem::take(&mut *self.block.lock());
        self.streams.lock().clear();
        self.items.store(0, Ordering::Relaxed);
        self.log_bytes.store(0, Ordering::Relaxed);
        b.compact();
        b
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&SignalBlock) -> R) -> R {
        f(&self.block.lock())
    }
}

/// Leaves in `refs` the first `limit` distinct records in `direction`'s order (the order
/// `sort_logs` gives), in that order: only the first `k` are sorted, `k` doubling from `limit`
/// while copies among them leave fewer than `limit` distinct.
fn keep_first(refs: &mut Vec<&LogRecord>, limit: usize, direction: Direction) {
    let order = |a: &&LogRecord, b: &&LogRecord| match direction {
        Direction::Forward => a.cmp(b),
        Direction::Backward => b.cmp(a),
    };
    let mut k = limit;
    while k < refs.len() {
        refs.select_nth_unstable_by(k, order);
        let mut first = refs[..k].to_vec();
        first.sort_unstable_by(order);
        first.dedup();
        if first.len() >= limit {
            first.truncate(limit);
            *refs = first;
            return;
        }
        k = k.saturating_mul(2).max(1);
    }
}

/// What a record costs in memory: the struct, every string's bytes, and the allocator's
/// overhead per heap allocation (about 16 B each). Counting only the body and attributes
/// undercounted by 2-3x, so `head.max_log_bytes` let the process grow far past it. The stream
/// labels and resource attributes a record shares with others (one copy per stream, see
/// [`LogRecord`]) count their share: their size over the records holding them.
fn log_size(r: &LogRecord) -> usize {
    record_size(r, true)
}

/// What a record costs once written out: [`log_size`] with its stream's labels and resource
/// attributes in full, as a flush's Arrow columns and Parquet pages hold them for every row.
fn log_row_size(r: &LogRecord) -> usize {
    record_size(r, false)
}

fn record_size(r: &LogRecord, share: bool) -> usize {
    const PER_ALLOCATION: usize = 16;
    // An `Arc`'s two counts and its allocation, beside its value.
    const SHARED: usize = 16 + PER_ALLOCATION;
    let strings = [
        &r.severity_text,
        &r.body,
        &r.trace_id,
        &r.span_id,
        &r.attributes,
        &r.scope_name,
        &r.scope_version,
        &r.event_name,
    ];
    let text: usize = strings
        .iter()
        .filter(|s| s.capacity() > 0)
        .map(|s| s.capacity() + PER_ALLOCATION)
        .sum();
    let labels = std::mem::size_of::<Labels>() + r.labels.heap_bytes() + 2 * PER_ALLOCATION + SHARED;
    let resource = r.resource_attributes.len() + SHARED;
    let shared = if share {
        labels / Arc::strong_count(&r.labels) + resource / Arc::strong_count(&r.resource_attributes)
    } else {
        labels + resource
    };
    std::mem::size_of::<LogRecord>() + text + shared
}

/// One stream's shared label set, or two equal ones.
fn same_stream(a: &Arc<Labels>, b: &Arc<Labels>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_storage::signals::{Exemplar, HistogramSample};

    fn hs(name: &str, ts: &[i64]) -> HistogramSeries {
        HistogramSeries {
            labels: Labels::from_pairs(&[("__name__", name)]),
            samples: ts
                .iter()
                .map(|&t| HistogramSample {
                    timestamp: t,
                    count: t as f64,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn log_bytes_count_every_string_label_and_the_record_itself() {
        let r = LogRecord {
            labels: Labels::from_pairs(&[("cluster", "prod-eu-1"), ("service_name", "checkout")]).into(),
            body: "x".repeat(1000),
            attributes: r#"{"k":"v"}"#.into(),
            resource_attributes: "r".repeat(300).into(),
            trace_id: "a".repeat(32),
            ..Default::default()
        };
        let strings = 1000 + 9 + 300 + 32 + "cluster".len() + "prod-eu-1".len() + "service_name".len() + 8;
        let size = log_size(&r);
        assert!(size >= strings + std::mem::size_of::<LogRecord>(), "{size}");
        assert!(size < strings + std::mem::size_of::<LogRecord>() + 400, "{size}");
        // Two records of one stream share its labels and resource attributes: each counts half.
        let copies = vec![r.clone(), r];
        let each = log_size(&copies[0]);
        assert!(size - each >= 300 / 2, "{size} alone, {each} each of two");
        let active = ActiveSignals::default();
        active.append(SignalBlock {
            logs: copies,
            ..Default::default()
        });
        assert_eq!(active.log_bytes(), 2 * each);
    }

    #[test]
    fn a_streams_records_from_every_write_share_one_label_set() {
        let write = |t: i64, stream: &str| LogRecord {
            labels: Arc::new(Labels::from_pairs(&[("cluster", "c"), ("app", stream)])),
            timestamp: t,
            ..Default::default()
        };
        let active = ActiveSignals::default();
        for t in 0..3 {
            // Each write's decoder made its own copies.
            active.append(SignalBlock {
                logs: vec![write(t, "api"), write(t, "db")],
                ..Default::default()
            });
        }
        let block = active.take();
        let (api, db): (Vec<&LogRecord>, Vec<&LogRecord>) =
            block.logs.iter().partition(|r| r.labels.get("app") == Some("api"));
        assert_eq!((api.len(), db.len()), (3, 3));
        for stream in [api, db] {
            assert!(stream.iter().all(|r| Arc::ptr_eq(&r.labels, &stream[0].labels)));
            let times: Vec<i64> = stream.iter().map(|r| r.timestamp).collect();
            assert_eq!(times, [0, 1, 2], "a stream's records together, in time order");
        }
        assert!(
            active.streams.lock().is_empty(),
            "a taken block's label sets are let go"
        );
    }

    #[test]
    fn a_frozen_blocks_logs_come_a_cluster_at_a_time_in_batches_of_about_the_size_asked() {
        let record = |cluster: &str, app: &str, t: i64| LogRecord {
            labels: Labels::from_pairs(&[("app", app), ("cluster", cluster)]).into(),
            timestamp: t,
            body: "x".repeat(200),
            ..Default::default()
        };
        let active = ActiveSignals::default();
        let mut logs = Vec::new();
        for t in 0..30 {
            // `app` sorts before `cluster`: sorting by labels alone would interleave clusters.
            logs.push(record(["b", "a", "c"][t as usize % 3], ["z", "y"][t as usize % 2], t));
        }
        active.append(SignalBlock {
            logs,
            ..Default::default()
        });
        let block = active.take();
        let clusters: Vec<&str> = block.logs.iter().map(|r| r.labels.get("cluster").unwrap()).collect();
        let mut runs = clusters.clone();
        runs.dedup();
        assert_eq!(runs, ["a", "b", "c"], "one run per cluster");
        let size = log_row_size(&block.logs[0]);
        let batches: Vec<&[LogRecord]> = block.log_batches(4 * size).collect();
        assert_eq!(
            batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [4, 4, 4, 4, 4, 4, 4, 2]
        );
        assert_eq!(batches.concat(), block.logs, "every record once, in order");
        assert_eq!(block.log_batches(1).count(), 30, "at least one record a batch");
        assert_eq!(SignalBlock::default().log_batches(1).count(), 0);
    }

    #[test]
    fn a_frozen_blocks_spans_come_a_cluster_at_a_time_in_batches_of_about_the_size_asked() {
        let span = |cluster: &str, t: u8| Span {
            trace_id: [t; 16],
            span_id: [1; 8],
            cluster: cluster.into(),
            attributes: "x".repeat(200),
            ..Default::default()
        };
        let active = ActiveSignals::default();
        let spans = (0..30u8).map(|t| span(["b", "a", "c"][t as usize % 3], t)).collect();
        active.append(SignalBlock {
            spans,
            ..Default::default()
        });
        assert!(active.log_bytes() >= 30 * 200, "spans count against the log budget");
        let block = active.take();
        let mut runs: Vec<&str> = block.spans.iter().map(|s| s.cluster.as_str()).collect();
        runs.dedup();
        assert_eq!(runs, ["a", "b", "c"], "one run per cluster");
        let size = block.spans[0].size();
        let batches: Vec<&[Span]> = block.span_batches(4 * size).collect();
        assert_eq!(
            batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [4, 4, 4, 4, 4, 4, 4, 2]
        );
        assert_eq!(batches.concat(), block.spans, "every span once, in order");
    }

    #[test]
    fn take_merges_series_and_keeps_the_last_write_of_a_timestamp() {
        let a = ActiveSignals::default();
        a.append(SignalBlock {
            histograms: vec![hs("h", &[3, 1])],
            ..Default::default()
        });
        let mut later = hs("h", &[1, 2]);
        later.samples[0].sum = 99.0;
        a.append(SignalBlock {
            histograms: vec![later, hs("g", &[5])],
            ..Default::default()
        });
        assert_eq!(a.items(), 5);
        let b = a.take();
        assert!(a.is_empty());
        assert_eq!(a.items(), 0);
        assert_eq!(b.histograms.len(), 2);
        let h = b
            .histograms
            .iter()
            .find(|h| h.labels.metric_name() == Some("h"))
            .unwrap();
        let ts: Vec<i64> = h.samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(ts, vec![1, 2, 3]);
        assert_eq!(h.samples[0].sum, 99.0);
    }

    #[test]
    fn exemplars_filter_by_selector_and_range() {
        let labels = Labels::from_pairs(&[("__name__", "m"), ("cluster", "a")]);
        let ex = |t| Exemplar {
            labels: Labels::from_pairs(&[("trace_id", "ab")]),
            value: 1.0,
            timestamp: t,
        };
        let b = SignalBlock {
            exemplars: vec![ExemplarSeries {
                labels,
                exemplars: vec![ex(1), ex(10)],
            }],
            ..Default::default()
        };
        let mut out = Vec::new();
        b.exemplars_matching(&[vec![Matcher::equal("cluster", "a")]], TimeRange::new(0, 5), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].exemplars.len(), 1);
        out.clear();
        b.exemplars_matching(&[vec![Matcher::equal("cluster", "b")]], TimeRange::ALL, &mut out);
        assert!(out.is_empty());
    }
}
