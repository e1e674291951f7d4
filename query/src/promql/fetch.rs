//! Reading what a plan's selectors need from the `Source`: raw samples, native histograms
//! and rollup buckets, one request per `or` alternative, merged by label set and sorted so
//! evaluation order never depends on the source.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tributary_storage::read::{SelectRequest, Within};
use tributary_storage::rollup::{Bucket, BucketSeries, Resolution};
use tributary_storage::signals::HistogramSeries as StoredHistograms;
use tributary_storage::types::{Labels, Matcher, Series, SeriesIdSet, TimeRange, TimestampMs, is_stale_nan};

use super::eval::Guard;
use super::plan::Selector;
use super::{Engine, in_batches};
use crate::error::{Error, Result};

impl Engine {
    /// Every selector's native-histogram series ([`Source::select_histograms`]), sorted by
    /// labels, a series matching several alternatives once. A selector that finds any reads raw
    /// samples: rollup buckets summarise floats only.
    pub(super) async fn fetch_histograms(
        &self,
        selectors: &[Selector],
        guard: &Guard,
    ) -> Result<Vec<Vec<StoredHistograms>>> {
        let fetched = in_batches(selectors, &|| guard.check(), |sel| async move {
            let Some(range) = sel.fetch else {
                return Ok::<_, Error>(Vec::new());
            };
            let requests = requests(&sel.matcher_sets, range, None);
            let answers = in_batches(&requests, &|| guard.check(), |r| self.source.select_histograms(r)).await?;
            let mut all: Vec<StoredHistograms> = answers.into_iter().flatten().collect();
            all.sort_by(|a, b| a.labels.cmp(&b.labels));
            all.dedup_by(|later, kept| later.labels == kept.labels);
            Ok(all)
        })
        .await?;
        let total: usize = fetched.iter().flatten().map(|s| s.samples.len()).sum();
        if total > self.cfg.max_samples {
            return Err(Error::TooManySamples);
        }
        Ok(fetched)
    }

    /// One `select` per selector (per `or` alternative), concurrently; results are merged by label
    /// set and sorted, so evaluation order is deterministic whatever the source returns. Selectors
    /// read from a rollup tier get their buckets instead (second list; the first is then empty),
    /// each bucket counting as a sample towards `query.max_samples`. A raw read
    /// [`Engine::prefetch`] made is taken, not made again.
    pub(super) async fn fetch(
        &self,
        selectors: &[Selector],
        prefetched: &Prefetched,
        guard: &Guard,
    ) -> Result<(Vec<Vec<Series>>, Vec<Vec<BucketSeries>>)> {
        // A selector the query holds twice (the generated SLO ratio `(sum(E) or 0 * sum(T)) /
        // sum(T)` reads `T` twice) is read once and copied: with the reads' files cached, what is
        // left of a read is merging pieces, which a copy does not repeat.
        let (firsts, slot) = distinct_reads(selectors);
        let unique: Vec<&Selector> = firsts.iter().map(|&i| &selectors[i]).collect();
        let fetched = in_batches(&unique, &|| guard.check(), |&sel| async move {
            match (sel.fetch, sel.tier) {
                (Some(range), Some(res)) if sel.edges => {
                    Ok((Vec::new(), self.fetch_edged(sel, range.end, res, guard).await?))
                }
                (Some(range), Some(res)) => Ok((Vec::new(), self.fetch_buckets(sel, range, res, guard).await?)),
                (Some(range), None) => match prefetched.take(selectors, sel) {
                    Some(series) => Ok((series, Vec::new())),
                    None => Ok((self.fetch_selector(sel, range, None, guard).await?, Vec::new())),
                },
                (None, _) => Ok::<_, Error>((Vec::new(), Vec::new())),
            }
        })
        .await?;
        // Each selector's answer: its first copy's, moved by the last selector using it.
        let mut answers: Vec<Option<(Vec<Series>, Vec<BucketSeries>)>> = fetched.into_iter().map(Some).collect();
        let mut uses = vec![0usize; answers.len()];
        slot.iter().for_each(|&k| uses[k] += 1);
        let (mut fetched, mut buckets) = (Vec::with_capacity(selectors.len()), Vec::with_capacity(selectors.len()));
        for k in slot {
            uses[k] -= 1;
            let (series, pieces) = if uses[k] == 0 {
                answers[k].take().expect("moved by its last user only")
            } else {
                answers[k].clone().expect("not moved yet")
            };
            fetched.push(series);
            buckets.push(pieces);
        }
        let total: usize = fetched.iter().flatten().map(|s| s.samples.len()).sum::<usize>()
            + buckets.iter().flatten().map(|s| s.buckets.len()).sum::<usize>();
        if total > self.cfg.max_samples {
            return Err(Error::TooManySamples);
        }
        Ok((fetched, buckets))
    }

    /// One selector's buckets of `res` in `range` (whole buckets, as the planner chose the tier),
    /// a series matching several alternatives once, sorted by labels. A selector with one
    /// window reads it with `Source::select_window`: whole rollup days may come as one bucket.
    pub(super) async fn fetch_buckets(
        &self,
        sel: &Selector,
        range: TimeRange,
        res: Resolution,
        guard: &Guard,
    ) -> Result<Vec<BucketSeries>> {
        let mut requests = requests(&sel.matcher_sets, range, None);
        for r in &mut requests {
            r.bucket_fields = sel.bucket_fields;
        }
        let answers = in_batches(&requests, &|| guard.check(), |r| async move {
            if sel.one_window {
                self.source.select_window(r, res).await
            } else {
                self.source.select_buckets(r, res).await
            }
        })
        .await?;
        let mut all: Vec<BucketSeries> = answers.into_iter().flat_map(|a| a.into_series()).collect();
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        all.dedup_by(|later, kept| later.labels == kept.labels);
        Ok(all)
    }

    /// The buckets of a selector's one window `(end - range, end]` (`end`: its fetched range's
    /// end) whose end is not on a
    /// boundary of `res` (see `plan::Planner::choose_tier`): the whole buckets inside it from
    /// the tier, and before and after them a piece summarising the raw samples of each partial
    /// bucket, labelled so that the window holds it (the first piece by its bucket's end, which
    /// is after the window's start; the last by the window's end). [`Bucket::append`] combines
    /// pieces and whole buckets exactly, so the window's summary is the one its raw samples give.
    pub(super) async fn fetch_edged(
        &self,
        sel: &Selector,
        end: TimestampMs,
        res: Resolution,
        guard: &Guard,
    ) -> Result<Vec<BucketSeries>> {
        let start = end.saturating_sub(sel.range_ms);
        let first_boundary = res.bucket_of(start);
        let last_boundary = end - end.rem_euclid(res.ms());
        let whole = TimeRange::new(first_boundary.saturating_add(1), last_boundary);
        let (inside, head, tail) = futures::try_join!(
            async {
                if whole.start > whole.end {
                    return Ok(Vec::new());
                }
                self.fetch_buckets(sel, whole, res, guard).await
            },
            self.fetch_selector(
                sel,
                TimeRange::new(start.saturating_add(1), first_boundary),
                None,
                guard
            ),
            self.fetch_selector(sel, TimeRange::new(last_boundary.saturating_add(1), end), None, guard),
        )?;
        let mut by_labels: BTreeMap<Labels, Vec<Bucket>> = BTreeMap::new();
        for s in inside {
            by_labels.entry(s.labels).or_default().extend(s.buckets);
        }
        for (series, label, at_front) in [(head, first_boundary, true), (tail, end, false)] {
            for s in series {
                let mut samples = s.samples.iter().filter(|p| !is_stale_nan(p.value));
                let Some(&first) = samples.next() else {
                    continue;
                };
                let mut piece = Bucket::of(label, first);
                samples.for_each(|&p| piece.push(p));
                let buckets = by_labels.entry(s.labels).or_default();
                if at_front {
                    buckets.insert(0, piece);
                } else {
                    buckets.push(piece);
                }
            }
        }
        Ok(by_labels
            .into_iter()
            .map(|(labels, buckets)| BucketSeries { labels, buckets })
            .collect())
    }

    /// One selector's series in `range` (only those in `only`, when given), sorted by labels.
    pub(super) async fn fetch_selector(
        &self,
        sel: &Selector,
        range: TimeRange,
        only: Option<Arc<SeriesIdSet>>,
        guard: &Guard,
    ) -> Result<Vec<Series>> {
        let read = self.read_selector(sel, range, only, None, guard).await?;
        Ok(read.series.expect("a read without a budget is always made"))
    }

    /// [`Engine::fetch_selector`], counted first when given a `budget` and read only within it
    /// (`Source::select_within`; the alternatives' counts added).
    async fn read_selector(
        &self,
        sel: &Selector,
        range: TimeRange,
        only: Option<Arc<SeriesIdSet>>,
        budget: Option<usize>,
        guard: &Guard,
    ) -> Result<Within> {
        let mut requests = requests(&sel.matcher_sets, range, only);
        for r in &mut requests {
            r.newest_only = sel.newest_only;
        }
        let answers = in_batches(&requests, &|| guard.check(), |r| async move {
            match budget {
                Some(budget) => self.source.select_within(r, budget).await,
                None => Ok(Within {
                    counted: 0,
                    series: Some(self.source.select(r).await?),
                }),
            }
        })
        .await?;
        let read = Within::join(answers, budget.unwrap_or(usize::MAX), union_by_labels);
        if read.series.iter().flatten().map(|s| s.samples.len()).sum::<usize>() > self.cfg.max_samples {
            return Err(Error::TooManySamples);
        }
        Ok(read)
    }

    /// The raw float reads made beside the native-histogram read, before parts are planned, so
    /// that a querier asks each ingester once, not for a count and then for the samples: each
    /// distinct raw read once, counted within `query.part_samples` when a selector reading it
    /// could be read in parts (`splittable`, from [`Engine::splittable`]).
    pub(super) async fn prefetch(
        &self,
        selectors: &[Selector],
        splittable: &[(usize, TimeRange)],
        guard: &Guard,
    ) -> Result<Prefetched> {
        let (firsts, slot) = distinct_reads(selectors);
        let (budget, slot) = (self.cfg.part_samples, &slot);
        // `None` for a read that is not raw (a rollup tier's, or none).
        let answers = in_batches(&firsts, &|| guard.check(), |&first| async move {
            let sel = &selectors[first];
            let (Some(range), None) = (sel.fetch, sel.tier) else {
                return Ok(None);
            };
            // Counted when an aggregation reading it could read it in parts.
            let counted = splittable.iter().any(|&(s, _)| slot[s] == slot[first]);
            let read = self.read_selector(sel, range, None, counted.then_some(budget), guard);
            read.await.map(Some)
        })
        .await?;
        let counts = splittable
            .iter()
            .filter_map(|&(s, _)| Some((s, answers[slot[s]].as_ref()?.counted)))
            .collect();
        let reads = firsts
            .into_iter()
            .zip(answers)
            .filter_map(|(first, answer)| Some((first, Mutex::new(answer?.series))))
            .collect();
        Ok(Prefetched { counts, reads })
    }
}

/// What [`Engine::prefetch`] read.
pub(super) struct Prefetched {
    /// The samples counted of each selector that could be read in parts: what
    /// [`Engine::evaluate_in_parts`] plans with.
    pub counts: HashMap<usize, usize>,
    /// Each read, by the first selector making it: its series, `None` past the budget or once
    /// taken by [`Engine::fetch`].
    reads: Vec<(usize, Mutex<Option<Vec<Series>>>)>,
}

impl Prefetched {
    /// The series read for selectors reading as `sel` does, taken.
    fn take(&self, selectors: &[Selector], sel: &Selector) -> Option<Vec<Series>> {
        let (_, read) = self
            .reads
            .iter()
            .find(|(first, _)| same_read(&selectors[*first], sel))?;
        read.lock().take()
    }
}

/// Selectors grouped by what they read ([`same_read`]): the first selector of each distinct
/// read, and each selector's read (an index into the first list).
fn distinct_reads(selectors: &[Selector]) -> (Vec<usize>, Vec<usize>) {
    let mut firsts: Vec<usize> = Vec::new();
    let slot = selectors
        .iter()
        .enumerate()
        .map(|(i, sel)| {
            firsts
                .iter()
                .position(|&f| same_read(&selectors[f], sel))
                .unwrap_or_else(|| {
                    firsts.push(i);
                    firsts.len() - 1
                })
        })
        .collect();
    (firsts, slot)
}

/// Whether two selectors read the same data: same matchers, window, range, tier and read kind.
pub(super) fn same_read(a: &Selector, b: &Selector) -> bool {
    a.matcher_sets == b.matcher_sets
        && a.fetch == b.fetch
        && a.range_ms == b.range_ms
        && a.tier == b.tier
        && a.edges == b.edges
        && a.one_window == b.one_window
        && a.newest_only == b.newest_only
        && a.bucket_fields == b.bucket_fields
}

/// One request per matcher alternative, each limited to `only` when given.
pub(super) fn requests(
    matcher_sets: &[Vec<Matcher>],
    range: TimeRange,
    only: Option<Arc<SeriesIdSet>>,
) -> Vec<SelectRequest> {
    matcher_sets
        .iter()
        .map(|m| SelectRequest {
            only: only.clone(),
            ..SelectRequest::new(m.clone(), range)
        })
        .collect()
}

/// Merges the answers of a selector's alternatives (a series may match several) and sorts by
/// labels, the order Prometheus's storage returns.
pub(super) fn union_by_labels(mut answers: Vec<Vec<Series>>) -> Vec<Series> {
    if answers.len() == 1 {
        // One answer holds each label set once (the `Source` contract): order only.
        let mut all = answers.pop().unwrap_or_default();
        all.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        return all;
    }
    let mut all: Vec<Series> = answers.into_iter().flatten().collect();
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    all.dedup_by(|later, kept| later.labels == kept.labels);
    all
}
