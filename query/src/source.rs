//! [`MergedSource`]: one [`Source`] over several (the head and the Parquet files), so the engine
//! never needs to know where a sample lives.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::try_join_all;
use hashbrown::{HashTable, hash_table};
use tributary_storage::Result;
use tributary_storage::read::sort_dedup_exemplars;
use tributary_storage::read::{ClusterRows, SelectRequest, SeriesSize, Source, Within, sorted_union};
use tributary_storage::rollup::{BucketRead, Resolution};
use tributary_storage::signals::{Exemplar, ExemplarSeries, HistogramSeries, MetricMetadata};
use tributary_storage::types::{Labels, Matcher, Sample, Series, TimeRange};

/// The sources' `select` answers as one, in priority order (see [`MergedSource`]).
fn merge_selects(mut answers: Vec<Vec<Series>>) -> Vec<Series> {
    // Usually one source holds the range (the head for recent data, Parquet for older):
    // nothing to merge then.
    let non_empty = answers.iter().filter(|a| !a.is_empty()).count();
    if non_empty <= 1 {
        return answers.drain(..).find(|a| !a.is_empty()).unwrap_or_default();
    }
    // Answers sorted by labels (a querier's ingesters, `RemoteSource`) merge in one pass and
    // stay sorted, so the engine's sort by labels finds its input in order. An unsorted answer
    // (a head's hash order) fails the check at its first pairs.
    if answers.iter().all(|a| a.is_sorted_by(|x, y| x.labels < y.labels)) {
        return answers
            .into_iter()
            .reduce(|first, second| merge_sorted_by(first, second, |x, y| x.labels.cmp(&y.labels), merge_series))
            .unwrap_or_default();
    }
    merge_by_series(answers, |s| &s.labels, merge_series)
}

/// One series from two sources' copies of it, `kept`'s samples winning on equal timestamps.
fn merge_series(kept: &mut Series, later: Series) {
    kept.samples = merge_samples(std::mem::take(&mut kept.samples), later.samples);
}

/// Reads every inner source and merges their answers.
///
/// Sources are given in priority order (head first, then Parquet): series with equal label sets
/// are merged into one, and when two sources hold a sample at the same timestamp the earlier
/// source's sample wins. The head holds the freshest copy of a sample that may also have been
/// flushed, so it must come first.
#[derive(Debug, Clone)]
pub struct MergedSource {
    sources: Vec<Arc<dyn Source>>,
}

impl MergedSource {
    /// Merges `sources`, given in priority order (see the type's docs).
    pub fn new(sources: Vec<Arc<dyn Source>>) -> Self {
        Self { sources }
    }
}

#[async_trait]
impl Source for MergedSource {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        let answers = try_join_all(self.sources.iter().map(|s| s.select(req))).await?;
        Ok(merge_selects(answers))
    }

    /// Every source counts and reads at once, each within the whole budget (one round trip to
    /// each ingester); the answers are dropped when the counts add up past it, so a read over
    /// the budget holds at most one budget's samples per source.
    async fn select_within(&self, req: &SelectRequest, budget: usize) -> Result<Within> {
        let answers = try_join_all(self.sources.iter().map(|s| s.select_within(req, budget))).await?;
        Ok(Within::join(answers, budget, merge_selects))
    }

    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        let mut answers = try_join_all(self.sources.iter().map(|s| s.series(req))).await?;
        // One source's answer holds each label set once already (the contract).
        if answers.iter().filter(|a| !a.is_empty()).count() <= 1 {
            return Ok(answers.drain(..).find(|a| !a.is_empty()).unwrap_or_default());
        }
        let mut all: Vec<Labels> = answers.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> Result<usize> {
        let counts = try_join_all(self.sources.iter().map(|s| s.count_samples(req, limit))).await?;
        Ok(counts.into_iter().sum())
    }

    /// A series held by several sources counts the samples of each (an upper bound).
    async fn series_samples(&self, req: &SelectRequest) -> Result<Vec<SeriesSize>> {
        let answers = try_join_all(self.sources.iter().map(|s| s.series_samples(req))).await?;
        Ok(SeriesSize::merge(answers.into_iter().flatten(), |a, b| a + b))
    }

    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        let answers = try_join_all(self.sources.iter().map(|s| s.label_names(req))).await?;
        Ok(sorted_union(answers))
    }

    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        let answers = try_join_all(self.sources.iter().map(|s| s.label_values(name, req))).await?;
        Ok(sorted_union(answers))
    }

    /// Series held by several sources (an exemplar kept in the head and already flushed) are
    /// merged; each exemplar once, sorted; series sorted by labels.
    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        let answers = try_join_all(self.sources.iter().map(|s| s.exemplars(selectors, range))).await?;
        let mut merged: BTreeMap<Labels, Vec<Exemplar>> = BTreeMap::new();
        for series in answers.into_iter().flatten() {
            merged.entry(series.labels).or_default().extend(series.exemplars);
        }
        Ok(merged
            .into_iter()
            .map(|(labels, mut exemplars)| {
                sort_dedup_exemplars(&mut exemplars);
                ExemplarSeries { labels, exemplars }
            })
            .collect())
    }

    /// Series held by several sources are merged as [`Source::select`] merges them: on a
    /// timestamp both hold, the earlier source's sample wins.
    async fn select_histograms(&self, req: &SelectRequest) -> Result<Vec<HistogramSeries>> {
        let answers = try_join_all(self.sources.iter().map(|s| s.select_histograms(req))).await?;
        Ok(merge_by_series(
            answers,
            |s| &s.labels,
            |kept, later| {
                kept.samples = merge_by_time(std::mem::take(&mut kept.samples), later.samples, |h| h.timestamp);
            },
        ))
    }

    /// Raw samples merged as [`Source::select`] merges them (on a timestamp several sources
    /// hold, the earlier source's sample wins) before any is summarised into buckets, so a
    /// sample the head still holds after its flush counts once; stored rollups and the spans
    /// they cover are taken from every source as they are.
    async fn select_buckets(&self, req: &SelectRequest, resolution: Resolution) -> Result<BucketRead> {
        let answers = try_join_all(self.sources.iter().map(|s| s.select_buckets(req, resolution))).await?;
        Ok(merge_bucket_reads(resolution, answers))
    }

    /// Each source's sizes, added per cluster (a row two sources hold counts twice: an upper
    /// bound still).
    async fn bucket_sizes(&self, req: &SelectRequest, resolution: Resolution) -> Result<Vec<ClusterRows>> {
        let answers = try_join_all(self.sources.iter().map(|s| s.bucket_sizes(req, resolution))).await?;
        Ok(ClusterRows::sum(
            answers.into_iter().flatten().map(|c| (c.cluster, c.rows)),
        ))
    }

    /// Each source's window, merged as `select_buckets` merges.
    async fn select_window(&self, req: &SelectRequest, resolution: Resolution) -> Result<BucketRead> {
        let answers = try_join_all(self.sources.iter().map(|s| s.select_window(req, resolution))).await?;
        Ok(merge_bucket_reads(resolution, answers))
    }

    /// The union, each entry once, sorted.
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        let answers = try_join_all(self.sources.iter().map(|s| s.metadata(metric))).await?;
        let all: BTreeSet<MetricMetadata> = answers.into_iter().flatten().collect();
        Ok(all.into_iter().collect())
    }
}

/// Answers of several sources as one: rollup pieces and covered spans as they are, raw samples
/// merged by timestamp (on a timestamp several hold, the earlier source's wins).
fn merge_bucket_reads(resolution: Resolution, answers: Vec<BucketRead>) -> BucketRead {
    let mut merged = BucketRead::raw(resolution, Vec::new());
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for answer in answers {
        merged.rolled.extend(answer.rolled);
        merged.covered.extend(answer.covered);
        for series in answer.raw {
            match index.entry(series.labels) {
                Entry::Vacant(slot) => {
                    merged.raw.push(Series::new(slot.key().clone(), series.samples));
                    slot.insert(merged.raw.len() - 1);
                }
                Entry::Occupied(slot) => {
                    let existing = &mut merged.raw[*slot.get()].samples;
                    *existing = merge_samples(std::mem::take(existing), series.samples);
                }
            }
        }
    }
    merged
}

/// The series of several sources' answers (in priority order), those with equal labels merged
/// into the first one met by `merge(kept, later)`. Hashed by series id (a hash of the labels
/// already) and compared by labels: no second hash of every label set, and no copy of it as a
/// key.
fn merge_by_series<T>(answers: Vec<Vec<T>>, labels: impl Fn(&T) -> &Labels, merge: impl Fn(&mut T, T)) -> Vec<T> {
    let mut index: HashTable<(u64, usize)> = HashTable::new();
    let mut merged: Vec<T> = Vec::new();
    for series in answers.into_iter().flatten() {
        let id = labels(&series).series_id().0;
        let same = |&(_, i): &(u64, usize)| labels(&merged[i]) == labels(&series);
        match index.entry(id, same, |&(id, _)| id) {
            hash_table::Entry::Occupied(slot) => merge(&mut merged[slot.get().1], series),
            hash_table::Entry::Vacant(slot) => {
                slot.insert((id, merged.len()));
                merged.push(series);
            }
        }
    }
    merged
}

/// Merges two sorted, timestamp-unique sample lists; `first` wins on equal timestamps.
fn merge_samples(first: Vec<Sample>, second: Vec<Sample>) -> Vec<Sample> {
    merge_by_time(first, second, |s| s.timestamp)
}

/// Merges two lists sorted by `time` with unique times; `first` wins on equal times.
fn merge_by_time<T>(first: Vec<T>, second: Vec<T>, time: impl Fn(&T) -> i64) -> Vec<T> {
    merge_sorted_by(first, second, |x, y| time(x).cmp(&time(y)), |_, _| {})
}

/// Merges two lists sorted by `order`, each holding an item once under it, into one sorted
/// list: two equal items become one, `merge(kept, later)` with `first`'s item kept.
fn merge_sorted_by<T>(
    first: Vec<T>,
    second: Vec<T>,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
    merge: impl Fn(&mut T, T),
) -> Vec<T> {
    if second.is_empty() {
        return first;
    }
    if first.is_empty() {
        return second;
    }
    let mut out = Vec::with_capacity(first.len() + second.len());
    let (mut a, mut b) = (first.into_iter().peekable(), second.into_iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match order(x, y) {
                std::cmp::Ordering::Less => out.extend(a.next()),
                std::cmp::Ordering::Greater => out.extend(b.next()),
                std::cmp::Ordering::Equal => {
                    if let (Some(mut kept), Some(later)) = (a.next(), b.next()) {
                        merge(&mut kept, later);
                        out.push(kept);
                    }
                }
            },
            (Some(_), None) => out.extend(a.by_ref()),
            (None, Some(_)) => out.extend(b.by_ref()),
            (None, None) => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_source::VecSource;
    use proptest::prelude::*;
    use tributary_storage::signals::MetricType;
    use tributary_storage::types::STALE_NAN_BITS;

    fn series(name: &str, samples: &[(i64, f64)]) -> Series {
        Series::new(
            Labels::from_pairs(&[("__name__", name)]),
            samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        )
    }

    fn req(name: &str) -> SelectRequest {
        SelectRequest::new(vec![Matcher::equal("__name__", name)], TimeRange::ALL)
    }

    #[tokio::test]
    async fn merges_series_and_prefers_the_first_source_on_ties() {
        let head = Arc::new(VecSource::new(vec![series("up", &[(20, 2.0), (30, 3.0)])]));
        let parquet = Arc::new(VecSource::new(vec![
            series("up", &[(10, 1.0), (20, 99.0)]),
            series("other", &[(5, 5.0)]),
        ]));
        let merged = MergedSource::new(vec![head, parquet]);
        let got = merged.select(&req("up")).await.unwrap();
        assert_eq!(got.len(), 1);
        let values: Vec<(i64, f64)> = got[0].samples.iter().map(|s| (s.timestamp, s.value)).collect();
        assert_eq!(values, vec![(10, 1.0), (20, 2.0), (30, 3.0)]);
    }

    #[tokio::test]
    async fn keeps_stale_markers_bit_exact_and_unions_listings() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        let head = Arc::new(VecSource::new(vec![series("up", &[(20, stale)])]));
        let parquet = Arc::new(VecSource::new(vec![series("down", &[(10, 1.0)])]));
        let merged = MergedSource::new(vec![head, parquet]);
        let got = merged.select(&req("up")).await.unwrap();
        assert_eq!(got[0].samples[0].value.to_bits(), STALE_NAN_BITS);
        let all = SelectRequest::new(vec![], TimeRange::ALL);
        assert_eq!(merged.label_values("__name__", &all).await.unwrap(), vec!["down", "up"]);
        assert_eq!(merged.series(&all).await.unwrap().len(), 2);
        assert_eq!(merged.label_names(&all).await.unwrap(), vec!["__name__"]);
    }

    fn exemplar(timestamp: i64, trace: &str) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs(&[("trace_id", trace)]),
            value: 1.0,
            timestamp,
        }
    }

    fn exemplars(name: &str, list: Vec<Exemplar>) -> ExemplarSeries {
        ExemplarSeries {
            labels: Labels::from_pairs(&[("__name__", name)]),
            exemplars: list,
        }
    }

    #[tokio::test]
    async fn merges_exemplars_per_series_and_keeps_each_once() {
        // The head still holds exemplars that were already flushed.
        let head = Arc::new(VecSource::new(vec![]).with_exemplars(vec![
            exemplars("up", vec![exemplar(20, "b"), exemplar(10, "a")]),
            exemplars("zz", vec![exemplar(1, "z")]),
        ]));
        let parquet = Arc::new(VecSource::new(vec![]).with_exemplars(vec![
            exemplars("up", vec![exemplar(10, "a"), exemplar(5, "c"), exemplar(10, "d")]),
            exemplars("down", vec![exemplar(7, "e")]),
        ]));
        let merged = MergedSource::new(vec![head, parquet]);
        let got = merged.exemplars(&[vec![]], TimeRange::new(0, 15)).await.unwrap();
        let names: Vec<&str> = got.iter().map(|s| s.labels.metric_name().unwrap()).collect();
        assert_eq!(names, vec!["down", "up", "zz"]);
        assert_eq!(
            got[1].exemplars,
            vec![exemplar(5, "c"), exemplar(10, "a"), exemplar(10, "d")]
        );
        let only_up = [vec![Matcher::equal("__name__", "up")]];
        assert_eq!(merged.exemplars(&only_up, TimeRange::ALL).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unions_metadata() {
        let md = |cluster: &str, metric: &str| MetricMetadata {
            cluster: cluster.into(),
            metric: metric.into(),
            kind: MetricType::Counter,
            help: "h".into(),
            unit: String::new(),
        };
        let head = Arc::new(VecSource::new(vec![]).with_metadata(vec![md("a", "x"), md("b", "y")]));
        let parquet = Arc::new(VecSource::new(vec![]).with_metadata(vec![md("a", "x"), md("a", "y")]));
        let merged = MergedSource::new(vec![head, parquet]);
        assert_eq!(
            merged.metadata(None).await.unwrap(),
            vec![md("a", "x"), md("a", "y"), md("b", "y")]
        );
        assert_eq!(
            merged.metadata(Some("y")).await.unwrap(),
            vec![md("a", "y"), md("b", "y")]
        );
    }

    #[tokio::test]
    async fn passes_the_storage_conformance_suite_when_split_across_sources() {
        use tributary_storage::test_util::{MemSource, source_conformance};
        // Later entries count as written later, so they go to the head, which is listed first.
        source_conformance(|series| async move {
            let mid = series.len() / 2;
            let flushed: Arc<dyn Source> = Arc::new(MemSource::new(series[..mid].to_vec()));
            let head: Arc<dyn Source> = Arc::new(MemSource::new(series[mid..].to_vec()));
            Arc::new(MergedSource::new(vec![head, flushed])) as Arc<dyn Source>
        })
        .await;
    }

    #[tokio::test]
    async fn passes_the_histogram_conformance_suite_when_split_across_sources() {
        use tributary_storage::test_util::MemSource;
        use tributary_storage::test_util::histogram_source::histogram_source_conformance;
        // As above: the later half (written later) is the head's, listed first.
        histogram_source_conformance(|data| async move {
            let mid = data.len() / 2;
            let flushed: Arc<dyn Source> = Arc::new(MemSource::default().with_histograms(data[..mid].to_vec()));
            let head: Arc<dyn Source> = Arc::new(MemSource::default().with_histograms(data[mid..].to_vec()));
            Arc::new(MergedSource::new(vec![head, flushed])) as Arc<dyn Source>
        })
        .await;
    }

    proptest! {
        /// Three sources' answers, each sorted by labels or not: the merge holds each series
        /// once with the union of its samples (the earlier source's on equal timestamps), and
        /// is sorted by labels whenever every answer was.
        #[test]
        fn answers_merge_alike_sorted_or_not(
            sources in proptest::collection::vec(
                (
                    proptest::collection::btree_map(
                        0u8..12,
                        proptest::collection::btree_map(0i64..50, -5.0f64..5.0, 1..6),
                        0..8,
                    ),
                    any::<bool>(),
                ),
                3,
            ),
        ) {
            let name = |n: u8| format!("s{n:02}");
            let answers: Vec<Vec<Series>> = sources
                .iter()
                .map(|(set, sorted)| {
                    let mut answer: Vec<Series> = set
                        .iter()
                        .map(|(&n, samples)| {
                            let samples: Vec<(i64, f64)> = samples.iter().map(|(&t, &v)| (t, v)).collect();
                            series(&name(n), &samples)
                        })
                        .collect();
                    if !sorted {
                        answer.reverse();
                    }
                    answer
                })
                .collect();
            let all_sorted = answers.iter().all(|a| a.is_sorted_by(|x, y| x.labels < y.labels));
            let mut expected: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
            for (set, _) in &sources {
                for (&n, samples) in set {
                    let kept = expected.entry(name(n)).or_default();
                    for (&t, &v) in samples {
                        kept.entry(t).or_insert(v.to_bits());
                    }
                }
            }
            let out = merge_selects(answers);
            if all_sorted {
                prop_assert!(out.is_sorted_by(|x, y| x.labels < y.labels));
            }
            let got: BTreeMap<String, BTreeMap<i64, u64>> = out
                .iter()
                .map(|s| {
                    let samples = s.samples.iter().map(|x| (x.timestamp, x.value.to_bits())).collect();
                    (s.labels.get("__name__").unwrap_or_default().to_string(), samples)
                })
                .collect();
            prop_assert_eq!(got.len(), out.len());
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn merge_is_sorted_unique_and_keeps_first(
            a in proptest::collection::btree_map(0i64..200, -5.0f64..5.0, 0..40),
            b in proptest::collection::btree_map(0i64..200, -5.0f64..5.0, 0..40),
        ) {
            let to_samples = |m: &std::collections::BTreeMap<i64, f64>| {
                m.iter().map(|(&t, &v)| Sample::new(t, v)).collect::<Vec<_>>()
            };
            let out = merge_samples(to_samples(&a), to_samples(&b));
            prop_assert!(out.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
            for s in &out {
                let expected = a.get(&s.timestamp).or_else(|| b.get(&s.timestamp)).copied();
                prop_assert_eq!(Some(s.value), expected);
            }
            let mut keys: Vec<i64> = a.keys().chain(b.keys()).copied().collect();
            keys.sort();
            keys.dedup();
            prop_assert_eq!(out.len(), keys.len());
        }
    }
}
