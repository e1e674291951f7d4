//! The reference [`Source`] and the `Source` conformance suite.
//!
//! - [`MemSource`]: a plain `Vec<Series>` source. It is the reference semantics of the read
//!   contract, and a convenient fake for query-engine tests.
//! - [`source_conformance`]: the suite every `Source` must pass. It builds several datasets,
//!   hands each to `make`, and checks every contract point of [`Source`] against `MemSource`,
//!   panicking with the dataset, request and difference.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::read::sort_dedup_exemplars;
use crate::read::{SelectRequest, Source};
use crate::rollup::{Bucket, BucketFields, BucketSeries, Resolution};
use crate::signals::{Exemplar, ExemplarSeries, HistogramSeries, MetricMetadata};
use crate::test_util::MemHistograms;
use crate::types::{
    CLUSTER, Labels, MatchOp, Matcher, STALE_NAN_BITS, Sample, Series, SeriesIdSet, TimeRange, matches_all,
    sort_dedup_samples,
};
use crate::xor_chunk::{ChunkedSeries, MAX_SAMPLES_PER_CHUNK, XorChunk};

/// A `Vec<Series>`-backed [`Source`]: the reference semantics of the read contract, exemplars
/// and metadata included (see [`MemSource::with_exemplars`], [`MemSource::with_metadata`]).
#[derive(Clone, Debug, Default)]
pub struct MemSource {
    series: Vec<Series>,
    exemplars: Vec<ExemplarSeries>,
    metadata: BTreeSet<MetricMetadata>,
    histograms: MemHistograms,
    chunks: MemChunks,
}

/// How a [`MemSource`] answers [`Source::select_chunks`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemChunks {
    /// It holds no chunks (`None`, the trait's default).
    #[default]
    None,
    /// Every sample of each series that has one in range, in chunks of at most
    /// [`crate::xor_chunk::MAX_SAMPLES_PER_CHUNK`], in time order: the decoder must cut the
    /// range.
    Sorted,
    /// As `Sorted`, but each series' odd samples written before its even ones and its last
    /// sample first written with another value: the decoder must sort, and keep the sample
    /// written last.
    Scrambled,
}

impl MemSource {
    /// Series with equal labels are merged; for a repeated timestamp the sample given later
    /// wins (as if the later series were written later). Samples need not be sorted.
    pub fn new(input: Vec<Series>) -> Self {
        let mut series = super::merge_by_labels(input, |s| (&s.labels, &mut s.samples));
        for s in &mut series {
            sort_dedup_samples(&mut s.samples);
        }
        series.retain(|s| !s.samples.is_empty());
        Self {
            series,
            ..Self::default()
        }
    }

    /// Also holds these exemplars (series with equal labels merged, repeats kept once).
    pub fn with_exemplars(mut self, input: Vec<ExemplarSeries>) -> Self {
        self.exemplars.extend(input);
        self.exemplars = super::merge_by_labels(std::mem::take(&mut self.exemplars), |s| (&s.labels, &mut s.exemplars));
        for s in &mut self.exemplars {
            sort_dedup_exemplars(&mut s.exemplars);
        }
        self
    }

    /// Also holds these native-histogram series (merged as [`MemHistograms`] merges them).
    pub fn with_histograms(mut self, input: Vec<HistogramSeries>) -> Self {
        self.histograms = MemHistograms::new(input);
        self
    }

    /// Also holds these metadata entries (repeats kept once).
    pub fn with_metadata(mut self, input: Vec<MetricMetadata>) -> Self {
        self.metadata.extend(input);
        self
    }

    /// Answers [`Source::select_chunks`] as `chunks` says.
    pub fn with_chunks(mut self, chunks: MemChunks) -> Self {
        self.chunks = chunks;
        self
    }

    /// Every stored series, merged.
    pub fn all(&self) -> &[Series] {
        &self.series
    }
}

#[async_trait]
impl Source for MemSource {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        Ok(self
            .series
            .iter()
            .filter(|s| matches_all(&req.matchers, &s.labels) && req.admits(&s.labels))
            .filter_map(|s| {
                let samples: Vec<Sample> = s
                    .samples
                    .iter()
                    .filter(|p| req.range.contains(p.timestamp))
                    .copied()
                    .collect();
                (!samples.is_empty()).then(|| Series::new(s.labels.clone(), samples))
            })
            .collect())
    }

    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        Ok(self.select(req).await?.into_iter().map(|s| s.labels).collect())
    }

    async fn select_chunks(&self, req: &SelectRequest) -> Result<Option<Vec<ChunkedSeries>>> {
        if self.chunks == MemChunks::None {
            return Ok(None);
        }
        let chunk = |samples: &[Sample]| {
            let mut c = XorChunk::new();
            samples.iter().for_each(|s| c.push(s.timestamp, s.value));
            c.into_bytes()
        };
        let mut out = Vec::new();
        for s in &self.series {
            let in_range = s.samples.iter().any(|p| req.range.contains(p.timestamp));
            if !(in_range && matches_all(&req.matchers, &s.labels) && req.admits(&s.labels)) {
                continue;
            }
            let written: Vec<Sample> = match self.chunks {
                MemChunks::Scrambled => {
                    let last = *s.samples.last().expect("series hold samples");
                    let decoy = Sample::new(last.timestamp, last.value + 1.0);
                    let odd = s.samples.iter().skip(1).step_by(2);
                    let even = s.samples.iter().step_by(2);
                    std::iter::once(&decoy).chain(odd).chain(even).copied().collect()
                }
                _ => s.samples.clone(),
            };
            out.push(ChunkedSeries {
                labels: Arc::new(s.labels.clone()),
                chunks: written.chunks(MAX_SAMPLES_PER_CHUNK).map(chunk).collect(),
                sorted: self.chunks == MemChunks::Sorted,
            });
        }
        Ok(Some(out))
    }

    /// Series sorted by labels, exemplars per [`sort_dedup_exemplars`].
    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        let mut out: Vec<ExemplarSeries> = self
            .exemplars
            .iter()
            .filter(|s| selectors.iter().any(|m| matches_all(m, &s.labels)))
            .filter_map(|s| {
                let exemplars: Vec<Exemplar> = s
                    .exemplars
                    .iter()
                    .filter(|e| range.contains(e.timestamp))
                    .cloned()
                    .collect();
                (!exemplars.is_empty()).then(|| ExemplarSeries {
                    labels: s.labels.clone(),
                    exemplars,
                })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Series sorted by labels.
    async fn select_histograms(&self, req: &SelectRequest) -> Result<Vec<HistogramSeries>> {
        Ok(self.histograms.select(req))
    }

    /// Sorted by (cluster, metric, type, help, unit).
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        Ok(self
            .metadata
            .iter()
            .filter(|m| metric.is_none_or(|name| m.metric == name))
            .cloned()
            .collect())
    }
}

/// The [`Source`] conformance suite.
///
/// `make` receives a dataset and returns a source holding it. The `Vec` may repeat a label set;
/// an entry later in the `Vec` counts as written later, so for a timestamp present in both the
/// later entry's sample must win. `make` may load the entries in one go or in several loads
/// (keeping their order). Panics on the first contract violation.
pub async fn source_conformance<F, Fut>(make: F)
where
    F: Fn(Vec<Series>) -> Fut,
    Fut: Future<Output = Arc<dyn Source>>,
{
    for ds in datasets() {
        let reference = MemSource::new(ds.series.clone());
        let source = make(ds.series.clone()).await;
        let ranges = ranges_for(&reference);
        for matchers in &ds.matchers {
            for (range_name, range) in &ranges {
                let req = SelectRequest::new(matchers.clone(), *range);
                let ctx = format!(
                    "dataset {:?}, matchers {}, range {range_name} {range:?}",
                    ds.name,
                    show(matchers)
                );
                check(&ctx, source.as_ref(), &reference, &req).await;
            }
        }
    }
}

fn show(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Checks one request against the reference.
async fn check(ctx: &str, source: &dyn Source, reference: &MemSource, req: &SelectRequest) {
    let mut expected = reference.select(req).await.expect("MemSource never fails");
    expected.sort_by(|a, b| a.labels.cmp(&b.labels));
    // Series the request may legitimately name: matching, with data at any time.
    let candidates: Vec<&Labels> = reference
        .all()
        .iter()
        .map(|s| &s.labels)
        .filter(|l| matches_all(&req.matchers, l))
        .collect();

    let mut got = source
        .select(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: select failed: {e}"));
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    for w in got.windows(2) {
        assert!(
            w[0].labels != w[1].labels,
            "{ctx}: select returned series {} twice",
            w[0].labels
        );
    }
    for s in &got {
        assert!(
            !s.samples.is_empty(),
            "{ctx}: select returned {} with no samples",
            s.labels
        );
        for p in &s.samples {
            assert!(
                req.range.contains(p.timestamp),
                "{ctx}: {} has sample at {} outside range",
                s.labels,
                p.timestamp
            );
        }
        for w in s.samples.windows(2) {
            assert!(
                w[0].timestamp < w[1].timestamp,
                "{ctx}: {} samples not strictly increasing ({} then {})",
                s.labels,
                w[0].timestamp,
                w[1].timestamp
            );
        }
    }
    let got_labels: Vec<&Labels> = got.iter().map(|s| &s.labels).collect();
    let want_labels: Vec<&Labels> = expected.iter().map(|s| &s.labels).collect();
    assert_eq!(
        got_labels, want_labels,
        "{ctx}: select returned the wrong set of series"
    );
    for (g, w) in got.iter().zip(&expected) {
        assert_eq!(
            g.samples.len(),
            w.samples.len(),
            "{ctx}: {} sample count differs",
            g.labels
        );
        for (a, b) in g.samples.iter().zip(&w.samples) {
            assert!(
                a.timestamp == b.timestamp && a.value.to_bits() == b.value.to_bits(),
                "{ctx}: {} sample differs: got ({}, {:?} bits {:#x}), want ({}, {:?} bits {:#x})",
                g.labels,
                a.timestamp,
                a.value,
                a.value.to_bits(),
                b.timestamp,
                b.value,
                b.value.to_bits()
            );
        }
    }

    // `only`: every other series of the answer, exactly those, with the same samples.
    let half: SeriesIdSet = expected.iter().step_by(2).map(|s| s.labels.series_id()).collect();
    let mut part = source
        .select(&req.clone().only(Arc::new(half)))
        .await
        .unwrap_or_else(|e| panic!("{ctx}: select with `only` failed: {e}"));
    part.sort_by(|a, b| a.labels.cmp(&b.labels));
    // Compared by bits: NaN values must come back as they are.
    let bits = |s: &Series| {
        let samples: Vec<(i64, u64)> = s.samples.iter().map(|p| (p.timestamp, p.value.to_bits())).collect();
        (s.labels.clone(), samples)
    };
    let want_part: Vec<_> = got.iter().step_by(2).map(bits).collect();
    let got_part: Vec<_> = part.iter().map(bits).collect();
    if got_part != want_part {
        let names = |v: &[(Labels, Vec<(i64, u64)>)]| {
            v.iter()
                .map(|(l, s)| format!("{l} ({} samples)", s.len()))
                .collect::<Vec<_>>()
        };
        panic!(
            "{ctx}: select with `only` is not the named part of the answer: got {:?}, want {:?}",
            names(&got_part),
            names(&want_part)
        );
    }

    // `select_chunks`, where the source answers it: decoded for the range, exactly `select`'s
    // answer (with and without `only`), each series once.
    for (what, req, want) in [
        ("", req.clone(), got.iter().map(bits).collect::<Vec<_>>()),
        (
            " with `only`",
            req.clone().only(Arc::new(
                expected.iter().step_by(2).map(|s| s.labels.series_id()).collect(),
            )),
            want_part,
        ),
    ] {
        let Some(chunked) = source
            .select_chunks(&req)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: select_chunks{what} failed: {e}"))
        else {
            break;
        };
        let mut decoded: Vec<Series> = chunked
            .iter()
            .map(|c| Series::new((*c.labels).clone(), c.samples_in(req.range)))
            .filter(|s| !s.samples.is_empty())
            .collect();
        decoded.sort_by(|a, b| a.labels.cmp(&b.labels));
        let decoded: Vec<_> = decoded.iter().map(bits).collect();
        assert!(
            decoded == want,
            "{ctx}: select_chunks{what} decoded is not select's answer: got {} series, want {}",
            decoded.len(),
            want.len()
        );
    }

    // `newest_only`: the same series, each a sorted part of its full answer that keeps the newest
    // sample (a source may answer it alone, or ignore the hint).
    let mut newest = source
        .select(&SelectRequest {
            newest_only: true,
            ..req.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("{ctx}: select with `newest_only` failed: {e}"));
    newest.sort_by(|a, b| a.labels.cmp(&b.labels));
    let newest_labels: Vec<&Labels> = newest.iter().map(|s| &s.labels).collect();
    assert_eq!(
        newest_labels, want_labels,
        "{ctx}: select with `newest_only` returned the wrong set of series"
    );
    for (n, full) in newest.iter().zip(&got) {
        let (_, full_bits) = bits(full);
        let (_, part_bits) = bits(n);
        assert!(
            part_bits.last() == full_bits.last(),
            "{ctx}: {} with `newest_only` lost the newest sample: got {:?}, want {:?}",
            n.labels,
            part_bits.last(),
            full_bits.last()
        );
        assert!(
            part_bits.windows(2).all(|w| w[0].0 < w[1].0) && part_bits.iter().all(|p| full_bits.contains(p)),
            "{ctx}: {} with `newest_only` is not a sorted part of the full answer",
            n.labels
        );
    }

    check_buckets(ctx, source, reference, req).await;
    check_window(ctx, source, reference, req).await;
    let half: SeriesIdSet = expected.iter().step_by(2).map(|s| s.labels.series_id()).collect();
    check_buckets(
        &format!("{ctx}, `only` half"),
        source,
        reference,
        &req.clone().only(Arc::new(half)),
    )
    .await;

    // series_samples(): each series once, an upper bound of its samples in range, within the
    // matching series.
    let sizes = source
        .series_samples(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: series_samples failed: {e}"));
    let sized: BTreeMap<&Labels, usize> = sizes.iter().map(|s| (&s.labels, s.samples)).collect();
    assert_eq!(
        sized.len(),
        sizes.len(),
        "{ctx}: series_samples returned a label set twice"
    );
    for s in &got {
        let n = sized.get(&s.labels).copied().unwrap_or(0);
        assert!(
            n >= s.samples.len(),
            "{ctx}: series_samples says {n} for {}, which has {} in range",
            s.labels,
            s.samples.len()
        );
    }
    for l in sized.keys() {
        assert!(
            candidates.contains(l),
            "{ctx}: series_samples returned {l}, which is not a matching stored series"
        );
    }

    let selected: usize = got.iter().map(|s| s.samples.len()).sum();
    for limit in [0, selected / 2, usize::MAX] {
        let count = source
            .count_samples(req, limit)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: count_samples failed: {e}"));
        // Either a true upper bound, or a count past `limit` (it may stop there).
        assert!(
            count >= selected || count > limit,
            "{ctx}: count_samples({limit}) says {count}, select returned {selected}"
        );
    }

    // select_within: counted as count_samples counts; within the budget, select's answer
    // exactly; past it, none.
    for budget in [0, selected / 2, usize::MAX] {
        let within = source
            .select_within(req, budget)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: select_within({budget}) failed: {e}"));
        let counted = within.counted;
        assert!(
            counted >= selected || counted > budget,
            "{ctx}: select_within({budget}) counted {counted}, select returned {selected}"
        );
        match within.series {
            Some(mut series) => {
                assert!(
                    counted <= budget,
                    "{ctx}: select_within({budget}) read past its budget (counted {counted})"
                );
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                assert!(
                    series.iter().map(bits).eq(got.iter().map(bits)),
                    "{ctx}: select_within({budget}) is not select's answer: got {} series, want {}",
                    series.len(),
                    got.len()
                );
            }
            None => assert!(
                counted > budget,
                "{ctx}: select_within({budget}) read nothing with a count of {counted}, within it"
            ),
        }
    }

    // series(): a superset of select's label sets, within the matching series.
    let listed = source
        .series(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: series failed: {e}"));
    let listed_set: BTreeSet<&Labels> = listed.iter().collect();
    assert_eq!(
        listed_set.len(),
        listed.len(),
        "{ctx}: series returned a label set twice"
    );
    for l in &want_labels {
        assert!(
            listed_set.contains(l),
            "{ctx}: series left out {l}, which select returns"
        );
    }
    for l in &listed {
        assert!(
            candidates.contains(&l),
            "{ctx}: series returned {l}, which is not a matching stored series"
        );
    }

    // Label names and values: bounded below by select, above by the matching series.
    let names = source
        .label_names(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: label_names failed: {e}"));
    assert_sorted_unique(ctx, "label_names", &names);
    let lower: BTreeSet<&str> = want_labels.iter().flat_map(|l| l.iter().map(|l| l.name)).collect();
    let upper: BTreeSet<&str> = candidates.iter().flat_map(|l| l.iter().map(|l| l.name)).collect();
    for n in &lower {
        assert!(names.iter().any(|x| x == n), "{ctx}: label_names is missing {n:?}");
    }
    for n in &names {
        assert!(
            upper.contains(n.as_str()),
            "{ctx}: label_names has {n:?}, no matching series has it"
        );
    }
    for name in ["__name__", "cluster", "job"] {
        let values = source
            .label_values(name, req)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: label_values({name}) failed: {e}"));
        assert_sorted_unique(ctx, name, &values);
        let lower: BTreeSet<&str> = want_labels.iter().filter_map(|l| l.get(name)).collect();
        let upper: BTreeSet<&str> = candidates.iter().filter_map(|l| l.get(name)).collect();
        for v in &lower {
            assert!(
                values.iter().any(|x| x == v),
                "{ctx}: label_values({name}) is missing {v:?}"
            );
        }
        for v in &values {
            assert!(
                upper.contains(v.as_str()),
                "{ctx}: label_values({name}) has {v:?}, no matching series has it"
            );
        }
    }
}

/// [`Source::select_buckets`] at every resolution against the reference's (computed from raw
/// samples): the same series and bucket labels; count, min, max, first, last and the sample
/// times exact; sum and increase within [`BUCKET_TOLERANCE`].
async fn check_buckets(ctx: &str, source: &dyn Source, reference: &MemSource, req: &SelectRequest) {
    for res in Resolution::ALL {
        let ctx = format!("{ctx}, buckets of {}", res.name());
        let (got, want) = (
            read_buckets(&ctx, source, req, res).await,
            read_buckets(&ctx, reference, req, res).await,
        );
        let names = |v: &[BucketSeries]| v.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&got),
            names(&want),
            "{ctx}: select_buckets returned the wrong series"
        );
        check_bucket_sizes(&ctx, source, req, res, &got).await;
        for (g, w) in got.iter().zip(&want) {
            let labels = |v: &[Bucket]| v.iter().map(|b| b.timestamp).collect::<Vec<_>>();
            assert_eq!(
                labels(&g.buckets),
                labels(&w.buckets),
                "{ctx}: {} bucket labels differ",
                g.labels
            );
            for (a, b) in g.buckets.iter().zip(&w.buckets) {
                assert!(
                    same_summary(a, b),
                    "{ctx}: {} bucket differs: got {a:?}, want {b:?}",
                    g.labels
                );
            }
        }
        // The same read for `rate`'s fields: the same buckets, those fields as exact (the rest
        // may be NaN).
        let change = SelectRequest {
            bucket_fields: BucketFields::Change,
            ..req.clone()
        };
        let got = read_buckets(&ctx, source, &change, res).await;
        assert_eq!(
            names(&got),
            names(&want),
            "{ctx}: select_buckets for BucketFields::Change returned the wrong series"
        );
        for (g, w) in got.iter().zip(&want) {
            let summary = |v: &[Bucket]| {
                v.iter()
                    .map(|b| Bucket {
                        sum: 0.0,
                        min: 0.0,
                        max: 0.0,
                        ..*b
                    })
                    .collect::<Vec<_>>()
            };
            let (a, b) = (summary(&g.buckets), summary(&w.buckets));
            assert!(
                a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|(a, b)| a.timestamp == b.timestamp && same_summary(a, b)),
                "{ctx}: {} buckets for BucketFields::Change differ: got {a:?}, want {b:?}",
                g.labels
            );
        }
    }
}

/// [`Source::bucket_sizes`]: each cluster once, and for each cluster of the answer `got` at
/// least as many rows as its series have buckets (a bucket comes from one row or more).
async fn check_bucket_sizes(
    ctx: &str,
    source: &dyn Source,
    req: &SelectRequest,
    res: Resolution,
    got: &[BucketSeries],
) {
    let sizes = source
        .bucket_sizes(req, res)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: bucket_sizes failed: {e}"));
    let mut rows: HashMap<&str, usize> = HashMap::new();
    for c in &sizes {
        assert!(
            rows.insert(c.cluster.as_str(), c.rows).is_none(),
            "{ctx}: bucket_sizes lists cluster {:?} twice",
            c.cluster
        );
    }
    let mut buckets: HashMap<&str, usize> = HashMap::new();
    for s in got {
        *buckets.entry(s.labels.get(CLUSTER).unwrap_or("")).or_default() += s.buckets.len();
    }
    for (cluster, n) in buckets {
        let bound = rows.get(cluster).copied().unwrap_or(0);
        assert!(
            bound >= n,
            "{ctx}: bucket_sizes bounds cluster {cluster:?} by {bound} rows, but its series have {n} buckets"
        );
    }
}

/// [`Source::select_window`] at every resolution: each series' buckets folded in time order
/// equal the reference's buckets folded (the same series; exact but for sum and increase).
async fn check_window(ctx: &str, source: &dyn Source, reference: &MemSource, req: &SelectRequest) {
    for res in Resolution::ALL {
        let ctx = format!("{ctx}, one window of {}", res.name());
        let mut got = source
            .select_window(req, res)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: select_window failed: {e}"))
            .into_series();
        got.sort_by(|a, b| a.labels.cmp(&b.labels));
        let want = read_buckets(&ctx, reference, req, res).await;
        let fold = |s: &BucketSeries| {
            let mut it = s.buckets.iter();
            it.next().map(|first| {
                let mut total = *first;
                it.for_each(|b| total.append(b));
                total
            })
        };
        let names = |v: &[BucketSeries]| v.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&got),
            names(&want),
            "{ctx}: select_window returned the wrong series"
        );
        for (g, w) in got.iter().zip(&want) {
            let (Some(a), Some(b)) = (fold(g), fold(w)) else {
                panic!("{ctx}: {} has no bucket", g.labels);
            };
            assert!(
                a.timestamp == b.timestamp && same_summary(&a, &b),
                "{ctx}: {} window differs: got {a:?}, want {b:?}",
                g.labels
            );
        }
    }
}

/// Two summaries of the same samples: count, min, max, first, last and the sample times exact;
/// sum and increase within [`BUCKET_TOLERANCE`].
fn same_summary(a: &Bucket, b: &Bucket) -> bool {
    let same = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
    a.count == b.count
        && a.first_ts == b.first_ts
        && a.last_ts == b.last_ts
        && same(a.min, b.min)
        && same(a.max, b.max)
        && same(a.first, b.first)
        && same(a.last, b.last)
        && within_tolerance(a.sum, b.sum)
        && within_tolerance(a.increase, b.increase)
}

/// A source's buckets for `req`, sorted by labels.
async fn read_buckets(ctx: &str, source: &dyn Source, req: &SelectRequest, res: Resolution) -> Vec<BucketSeries> {
    let mut got = source
        .select_buckets(req, res)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: select_buckets failed: {e}"))
        .into_series();
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    got
}

/// The relative tolerance of bucket sums and increases computed in another order (pieces
/// combined, or a window's buckets added): floating-point summation order only.
pub const BUCKET_TOLERANCE: f64 = 1e-9;

/// Equal bits, both NaN, or within [`BUCKET_TOLERANCE`] of the larger magnitude.
pub fn within_tolerance(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
        || a == b
        || (a.is_nan() && b.is_nan())
        || (a - b).abs() <= BUCKET_TOLERANCE * a.abs().max(b.abs())
}

fn assert_sorted_unique(ctx: &str, what: &str, v: &[String]) {
    assert!(
        v.windows(2).all(|w| w[0] < w[1]),
        "{ctx}: {what} not sorted and unique: {v:?}"
    );
}

/// One dataset and the matcher sets to query it with (each under every range of [`ranges_for`]).
struct Dataset {
    name: &'static str,
    series: Vec<Series>,
    matchers: Vec<Vec<Matcher>>,
}

/// 2026-01-01T00:00:00Z: most datasets straddle the hours around it.
const T0: i64 = 1_767_225_600_000;
const STEP: i64 = 15_000;

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap_or_else(|e| panic!("bad test regex {value:?}: {e}"))
}
fn eq(name: &str, value: &str) -> Matcher {
    m(name, MatchOp::Equal, value)
}
fn ne(name: &str, value: &str) -> Matcher {
    m(name, MatchOp::NotEqual, value)
}
fn re(name: &str, value: &str) -> Matcher {
    m(name, MatchOp::RegexMatch, value)
}
fn nre(name: &str, value: &str) -> Matcher {
    m(name, MatchOp::RegexNoMatch, value)
}

fn series(pairs: &[(&str, &str)], samples: impl IntoIterator<Item = (i64, f64)>) -> Series {
    Series::new(
        Labels::from_pairs(pairs),
        samples.into_iter().map(|(t, v)| Sample::new(t, v)).collect(),
    )
}

/// Ranges derived from the data: whole, cut at both ends, exact endpoints, single instants,
/// across an hour boundary, before, after, inside a gap-free middle and inverted.
fn ranges_for(reference: &MemSource) -> Vec<(&'static str, TimeRange)> {
    let ts: BTreeSet<i64> = reference
        .all()
        .iter()
        .flat_map(|s| s.samples.iter().map(|p| p.timestamp))
        .collect();
    let (Some(&lo), Some(&hi)) = (ts.first(), ts.last()) else {
        return vec![("all", TimeRange::ALL)];
    };
    let mid = *ts.iter().nth(ts.len() / 2).unwrap_or(&lo);
    let q1 = *ts.iter().nth(ts.len() / 4).unwrap_or(&lo);
    let q3 = *ts.iter().nth(ts.len() * 3 / 4).unwrap_or(&hi);
    let hour = crate::layout::Hour::of(mid);
    vec![
        ("all", TimeRange::ALL),
        ("exact span", TimeRange::new(lo, hi)),
        ("inner", TimeRange::new(lo + 1, hi - 1)),
        ("first quarter to third", TimeRange::new(q1, q3)),
        ("between samples", TimeRange::new(q1 + 1, q3 - 1)),
        ("instant", TimeRange::new(mid, mid)),
        (
            "hour boundary",
            TimeRange::new(hour.start_ms() - 5 * STEP, hour.start_ms() + 5 * STEP),
        ),
        ("before", TimeRange::new(lo - 10 * STEP, lo - 1)),
        ("after", TimeRange::new(hi + 1, hi + 10 * STEP)),
        ("inverted", TimeRange::new(hi, lo.min(hi - 1))),
    ]
}

fn datasets() -> Vec<Dataset> {
    vec![fleet(), values(), duplicates(), utf8(), empty_matchers()]
}

/// Several clusters (one missing), metrics and series across three hours, with gaps.
fn fleet() -> Dataset {
    let mut out = Vec::new();
    let (start, n) = (T0 - 1_800_000, 480i64); // T0-30m .. T0+90m
    for (ci, cluster) in ["prod-eu", "prod-us", ""].into_iter().enumerate() {
        for inst in ["10.0.0.1:9100", "10.0.0.2:9100"] {
            let base = [("cluster", cluster), ("instance", inst)];
            let with = |extra: &[(&'static str, &'static str)]| {
                let mut v = base.to_vec();
                v.extend_from_slice(extra);
                v
            };
            out.push(series(
                &with(&[("__name__", "up"), ("job", "node")]),
                (0..n).map(|i| (start + i * STEP, 1.0)),
            ));
            for mode in ["idle", "user", "system"] {
                let l = with(&[("__name__", "node_cpu_seconds_total"), ("job", "node"), ("mode", mode)]);
                out.push(series(
                    &l,
                    (0..n).map(|i| (start + i * STEP, (i * (ci as i64 + 3)) as f64 * 0.01)),
                ));
            }
            for code in ["200", "503"] {
                let l = with(&[("__name__", "http_requests_total"), ("job", "api"), ("code", code)]);
                // Gaps: every third scrape missing; jittered timestamps.
                let samples = (0..n)
                    .filter(|i| i % 3 != 1)
                    .map(|i| (start + i * STEP + (i % 7), (i * i) as f64));
                out.push(series(&l, samples));
            }
        }
    }
    // A series that stops before the second hour and one that starts in the last.
    out.push(series(
        &[("__name__", "short_lived"), ("cluster", "prod-eu")],
        (0..20).map(|i| (start + i * STEP, 2.0)),
    ));
    out.push(series(
        &[("__name__", "late"), ("cluster", "prod-us")],
        (0..20).map(|i| (T0 + 3_000_000 + i * STEP, 3.0)),
    ));
    Dataset {
        name: "fleet",
        series: out,
        matchers: vec![
            vec![],
            vec![eq("__name__", "up")],
            vec![eq("__name__", "up"), eq("cluster", "prod-eu")],
            vec![re("cluster", "prod-.*"), eq("__name__", "node_cpu_seconds_total")],
            vec![ne("cluster", "prod-eu")],
            vec![re("__name__", "node_.*"), ne("mode", "idle")],
            vec![eq("__name__", "http_requests_total"), re("code", "5..")],
            vec![eq("job", "api")],
            vec![eq("__name__", "nonexistent")],
            vec![eq("cluster", "")],
            vec![ne("cluster", ""), eq("instance", "10.0.0.2:9100")],
            vec![re("__name__", "short_lived|late")],
            vec![eq("cluster", "nope")],
        ],
    }
}

/// Values whose bits must survive: staleness markers, other NaNs, infinities, signed zero.
fn values() -> Dataset {
    let special = [
        f64::from_bits(STALE_NAN_BITS),
        f64::NAN,
        f64::from_bits(0x7ff8_0000_0000_0001),
        f64::from_bits(0xfff8_0000_0000_0000),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        f64::MAX,
        f64::MIN,
        1e300,
        -123.456,
    ];
    let mut out = vec![series(
        &[("__name__", "special"), ("cluster", "c1"), ("job", "v")],
        special.iter().enumerate().map(|(i, v)| (T0 + i as i64 * STEP, *v)),
    )];
    // Scrapes that alternate real values and staleness markers.
    out.push(series(
        &[("__name__", "flappy"), ("cluster", "c1"), ("job", "v")],
        (0..40).map(|i| {
            (
                T0 + i * STEP,
                if i % 4 == 3 {
                    f64::from_bits(STALE_NAN_BITS)
                } else {
                    i as f64
                },
            )
        }),
    ));
    // Across the Unix epoch: negative timestamps are valid.
    out.push(series(
        &[("__name__", "epoch"), ("cluster", "c2")],
        (-4..4).map(|i| (i * STEP, i as f64)),
    ));
    Dataset {
        name: "values",
        series: out,
        matchers: vec![
            vec![],
            vec![eq("__name__", "special")],
            vec![eq("job", "v"), ne("__name__", "special")],
        ],
    }
}

/// The same series loaded twice (overlapping) and a late load rewriting old timestamps.
fn duplicates() -> Dataset {
    let a = [("__name__", "dup"), ("cluster", "c"), ("job", "a")];
    let b = [("__name__", "dup"), ("cluster", "c"), ("job", "b")];
    let start = T0 - 600_000;
    let stale = f64::from_bits(STALE_NAN_BITS);
    let out = vec![
        series(&a, (0..100).map(|i| (start + i * STEP, 1.0 + i as f64))),
        series(
            &b,
            (0..60).map(|i| (start + i * STEP, if i == 55 { stale } else { 7.0 })),
        ),
        // Second load: overlaps a's tail and b's middle (replacing b's stale marker).
        series(
            &a,
            (50..150).map(|i| (start + i * STEP, if i == 60 { stale } else { 2000.0 + i as f64 })),
        ),
        series(&b, (40..58).map(|i| (start + i * STEP, 8.0))),
        // Third load: late data rewriting a's oldest samples.
        series(&a, (10..20).map(|i| (start + i * STEP, -3.0))),
    ];
    Dataset {
        name: "duplicates",
        series: out,
        matchers: vec![
            vec![],
            vec![eq("job", "a")],
            vec![eq("__name__", "dup"), re("job", "b|z")],
        ],
    }
}

/// Label names and values that must survive any encoding, and regexes over them.
fn utf8() -> Dataset {
    let values = [
        "ünïcödé ✓",
        "emoji 🚀",
        "line1\nline2",
        "quote\"back\\slash",
        "slash/and/../dots",
        "%2F",
        "@none",
        "{\"json\":1}",
        "tab\tend",
        "nul\u{0}byte",
        " ",
    ];
    let clusters = ["a/b", "..", "ü", "@none", "%41", "."];
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let cluster = clusters[i % clusters.len()];
        let l = [
            ("__name__", "odd"),
            ("cluster", cluster),
            ("job", v),
            ("label.with.dots", "x"),
        ];
        out.push(series(&l, (0..10).map(|k| (T0 + k * STEP, (i * 10) as f64 + k as f64))));
    }
    out.push(series(
        &[("__name__", "métrique.total"), ("cluster", "ü"), ("ünï", "ç")],
        (0..10).map(|k| (T0 + k * STEP, k as f64)),
    ));
    Dataset {
        name: "utf8",
        series: out,
        matchers: vec![
            vec![],
            vec![re("job", "line1.line2")],
            vec![re("job", "line1")],
            vec![eq("job", "line1\nline2")],
            vec![nre("job", ".*\n.*")],
            vec![eq("cluster", "a/b")],
            vec![eq("cluster", "..")],
            vec![eq("cluster", "@none")],
            vec![eq("cluster", ".")],
            vec![re("cluster", ".*")],
            vec![eq("__name__", "métrique.total")],
            vec![ne("label.with.dots", "")],
            vec![re("job", ".*🚀.*")],
            vec![eq("job", "quote\"back\\slash")],
            vec![eq("ünï", "ç")],
            vec![re("job", "nul.byte")],
        ],
    }
}

/// Prometheus's empty-value rules: a missing label matches as `""`.
fn empty_matchers() -> Dataset {
    let samples = || (0..5).map(|k| (T0 + k * STEP, k as f64));
    let out = vec![
        series(&[("__name__", "m"), ("cluster", "c"), ("env", "prod")], samples()),
        series(&[("__name__", "m"), ("cluster", "c"), ("env", "dev")], samples()),
        series(&[("__name__", "m"), ("cluster", "c")], samples()),
        series(&[("__name__", "m")], samples()),
        series(&[("cluster", "c"), ("job", "nameless")], samples()),
    ];
    Dataset {
        name: "empty matchers",
        series: out,
        matchers: vec![
            vec![eq("env", "")],
            vec![ne("env", "")],
            vec![re("env", "")],
            vec![re("env", ".*")],
            vec![re("env", ".+")],
            vec![nre("env", ".+")],
            vec![nre("env", "")],
            vec![eq("__name__", "")],
            vec![ne("__name__", ""), eq("cluster", "")],
            vec![re("cluster", "c?"), eq("env", "")],
            vec![eq("missing", "")],
            vec![ne("missing", "")],
            vec![eq("env", "prod"), eq("env", "dev")],
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mem_source_passes_the_conformance_suite() {
        source_conformance(|series| async move { Arc::new(MemSource::new(series)) as Arc<dyn Source> }).await;
    }

    #[tokio::test]
    async fn mem_source_keeps_the_later_duplicate() {
        let l = Labels::from_pairs(&[("__name__", "x")]);
        let src = MemSource::new(vec![
            Series::new(l.clone(), vec![Sample::new(1, 1.0), Sample::new(2, 1.0)]),
            Series::new(l.clone(), vec![Sample::new(2, 5.0), Sample::new(0, 9.0)]),
        ]);
        let got = src.select(&SelectRequest::new(vec![], TimeRange::ALL)).await.unwrap();
        assert_eq!(
            got,
            vec![Series::new(
                l,
                vec![Sample::new(0, 9.0), Sample::new(1, 1.0), Sample::new(2, 5.0)]
            )]
        );
    }

    #[tokio::test]
    async fn mem_source_holds_exemplars_and_metadata() {
        use crate::signals::MetricType;
        let l = |c: &str| Labels::from_pairs(&[("__name__", "x"), ("cluster", c)]);
        let ex = |t: i64, trace: &str| Exemplar {
            labels: Labels::from_pairs(&[("trace_id", trace)]),
            value: 1.0,
            timestamp: t,
        };
        let src = MemSource::new(vec![]).with_exemplars(vec![
            ExemplarSeries {
                labels: l("b"),
                exemplars: vec![ex(5, "q"), ex(1, "p")],
            },
            ExemplarSeries {
                labels: l("a"),
                exemplars: vec![ex(3, "r")],
            },
            ExemplarSeries {
                labels: l("b"),
                exemplars: vec![ex(1, "p"), ex(9, "s")],
            },
        ]);
        let got = src.exemplars(&[vec![]], TimeRange::new(1, 5)).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((&got[0].labels, &got[0].exemplars), (&l("a"), &vec![ex(3, "r")]));
        assert_eq!(
            got[1].exemplars,
            vec![ex(1, "p"), ex(5, "q")],
            "merged, deduplicated, sorted"
        );
        let b_or_c = [vec![eq("cluster", "b")], vec![eq("cluster", "c")]];
        let only_b = src.exemplars(&b_or_c, TimeRange::ALL).await.unwrap();
        assert_eq!((only_b.len(), only_b[0].exemplars.len()), (1, 3));
        assert!(src.exemplars(&[], TimeRange::ALL).await.unwrap().is_empty());

        let md = |metric: &str, help: &str| MetricMetadata {
            cluster: "a".into(),
            metric: metric.into(),
            kind: MetricType::Gauge,
            help: help.into(),
            unit: String::new(),
        };
        let src = src.with_metadata(vec![md("y", "h"), md("x", "h"), md("y", "h")]);
        assert_eq!(src.metadata(None).await.unwrap(), vec![md("x", "h"), md("y", "h")]);
        assert_eq!(src.metadata(Some("y")).await.unwrap(), vec![md("y", "h")]);
    }

    /// The suite must catch a source that breaks the contract.
    #[tokio::test]
    #[should_panic(expected = "outside range")]
    async fn conformance_rejects_a_source_that_ignores_the_range() {
        #[derive(Debug)]
        struct IgnoresRange(MemSource);
        #[async_trait]
        impl Source for IgnoresRange {
            async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
                self.0
                    .select(&SelectRequest {
                        range: TimeRange::ALL,
                        ..req.clone()
                    })
                    .await
            }
            async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
                self.0.series(req).await
            }
        }
        source_conformance(|s| async move { Arc::new(IgnoresRange(MemSource::new(s))) as Arc<dyn Source> }).await;
    }

    #[tokio::test]
    #[should_panic(expected = "with `newest_only` lost the newest sample")]
    async fn conformance_rejects_a_source_that_drops_the_newest_sample_under_the_hint() {
        #[derive(Debug)]
        struct OldestOnly(MemSource);
        #[async_trait]
        impl Source for OldestOnly {
            async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
                let mut all = self.0.select(req).await?;
                if req.newest_only {
                    for s in &mut all {
                        s.samples.truncate(1);
                    }
                }
                Ok(all)
            }
            async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
                self.0.series(req).await
            }
        }
        source_conformance(|s| async move { Arc::new(OldestOnly(MemSource::new(s))) as Arc<dyn Source> }).await;
    }

    #[tokio::test]
    #[should_panic(expected = "select with `only` is not the named part of the answer")]
    async fn conformance_rejects_a_source_that_ignores_only() {
        #[derive(Debug)]
        struct IgnoresOnly(MemSource);
        #[async_trait]
        impl Source for IgnoresOnly {
            async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
                self.0
                    .select(&SelectRequest::new(req.matchers.clone(), req.range))
                    .await
            }
            async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
                self.0.series(req).await
            }
        }
        source_conformance(|s| async move { Arc::new(IgnoresOnly(MemSource::new(s))) as Arc<dyn Source> }).await;
    }
}
