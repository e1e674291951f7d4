//! The head read back: the `Source`, `LogSource` and `TraceSource` contracts over the active
//! part and the frozen blocks, and the in-memory listings of exemplars, logs and metadata.

use super::*;

#[async_trait]
impl Source for Head {
    async fn select(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<Series>> {
        Ok(self.select_series(req))
    }

    /// The chunks as they are held: copied, never decoded (the querier decodes them).
    async fn select_chunks(&self, req: &SelectRequest) -> tributary_storage::Result<Option<Vec<ChunkedSeries>>> {
        Ok(Some(self.select_chunked(req)))
    }

    async fn series(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<Labels>> {
        let mut out: Vec<Labels> = Vec::new();
        self.for_each_match(req, |s| {
            if s.count_in(req.range) > 0 {
                out.push((*s.labels).clone());
            }
        });
        if !self.frozen.read().is_empty() {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    /// Everything the head holds when that is within `limit`; otherwise the matching samples,
    /// counted in place (a series in several blocks counts each block's).
    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> tributary_storage::Result<usize> {
        let held = self.total_samples();
        if held <= limit {
            return Ok(held);
        }
        let mut total = 0;
        self.for_each_match(req, |s| total += s.count_in(req.range));
        Ok(total)
    }

    /// Exact: the samples in range, counted in place.
    async fn series_samples(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<SeriesSize>> {
        let mut out: Vec<SeriesSize> = Vec::new();
        self.for_each_match(req, |s| {
            let samples = s.count_in(req.range);
            if samples > 0 {
                out.push(SeriesSize {
                    labels: (*s.labels).clone(),
                    samples,
                });
            }
        });
        // Without frozen blocks each label set is visited once. With them, a series in several
        // blocks counts each block's samples (they may share a timestamp): still an upper bound.
        if self.frozen.read().is_empty() {
            return Ok(out);
        }
        Ok(SeriesSize::merge(out, |a, b| a + b))
    }

    /// Without matchers, from the label indexes of the blocks overlapping the range (as coarse
    /// in time as a block, like Prometheus' head); otherwise from the matching label sets in
    /// place: no label set is copied, each distinct name once.
    async fn label_names(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<String>> {
        if req.matchers.is_empty() {
            let mut lists = Vec::new();
            self.for_each_label_index(&req.range, |index| lists.push(index.names()));
            return Ok(sorted_union(lists));
        }
        let mut names: HashSet<String> = HashSet::new();
        self.for_each_match(req, |s| {
            if s.count_in(req.range) == 0 {
                return;
            }
            for l in s.labels.iter() {
                if !names.contains(l.name) {
                    names.insert(l.name.to_string());
                }
            }
        });
        Ok(sorted(names))
    }

    /// When every matcher is on label `name` itself (or there is none), from the label indexes
    /// of the blocks overlapping the range (as coarse in time as a block, like Prometheus'
    /// head); otherwise from the matching label sets in place: no label set is copied, each
    /// distinct value once.
    async fn label_values(&self, name: &str, req: &SelectRequest) -> tributary_storage::Result<Vec<String>> {
        // A series without the label has no value to list, whatever the matchers say of "".
        if req.matchers.iter().all(|m| m.name == name) {
            let mut lists = Vec::new();
            self.for_each_label_index(&req.range, |index| lists.push(index.values(name, &req.matchers)));
            return Ok(sorted_union(lists));
        }
        let mut values: HashSet<String> = HashSet::new();
        self.for_each_match(req, |s| {
            if let Some(v) = s.labels.get(name)
                && !values.contains(v)
                && s.count_in(req.range) > 0
            {
                values.insert(v.to_string());
            }
        });
        Ok(sorted(values))
    }

    async fn exemplars(
        &self,
        selectors: &[Vec<Matcher>],
        range: TimeRange,
    ) -> tributary_storage::Result<Vec<ExemplarSeries>> {
        Ok(self.exemplars_in_memory(selectors, range))
    }

    async fn metadata(&self, metric: Option<&str>) -> tributary_storage::Result<Vec<MetricMetadata>> {
        Ok(self.metadata_in_memory(metric))
    }

    /// Frozen blocks (oldest first) then the active one, so a later write of a timestamp wins.
    async fn select_histograms(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<HistogramSeries>> {
        let mut found = Vec::new();
        self.signal_blocks(|b| b.histograms_matching(req, &mut found));
        Ok(signals::merge_histograms(found))
    }
}

impl Head {
    fn signal_blocks<R>(&self, mut f: impl FnMut(&SignalBlock) -> R) -> Vec<R> {
        let mut out: Vec<R> = self.frozen.read().iter().map(|b| f(&b.signals)).collect();
        out.push(self.signals.with(f));
        out
    }

    /// Exemplars held in memory (see [`Source::exemplars`]).
    pub fn exemplars_in_memory(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Vec<ExemplarSeries> {
        let mut found = Vec::new();
        self.signal_blocks(|b| b.exemplars_matching(selectors, range, &mut found));
        // The same series may sit in several blocks: merge so each appears once.
        let mut merged: HashMap<Labels, ExemplarSeries> = HashMap::new();
        for s in found {
            match merged.get_mut(&s.labels) {
                Some(m) => m.exemplars.extend(s.exemplars),
                None => {
                    merged.insert(s.labels.clone(), s);
                }
            }
        }
        let mut out: Vec<ExemplarSeries> = merged.into_values().collect();
        for s in &mut out {
            s.exemplars
                .sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.value.total_cmp(&b.value)));
            s.exemplars.dedup();
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Log records held in memory (see [`LogSource::select_logs`]).
    pub fn logs_in_memory(&self, req: &LogRequest) -> Vec<LogRecord> {
        let mut out = Vec::new();
        self.signal_blocks(|b| b.logs_matching(req, &mut out));
        tributary_storage::read::sort_logs(&mut out, req.direction);
        // A client retry may have delivered the same record twice.
        out.dedup();
        if let Some(limit) = req.limit {
            out.truncate(limit);
        }
        out
    }

    /// Metadata held in memory (see [`Source::metadata`]).
    pub fn metadata_in_memory(&self, metric: Option<&str>) -> Vec<MetricMetadata> {
        let mut all = std::collections::BTreeSet::new();
        self.signal_blocks(|b| {
            all.extend(
                b.metadata
                    .iter()
                    .filter(|m| metric.is_none_or(|name| m.metric == name))
                    .cloned(),
            )
        });
        all.into_iter().collect()
    }
}

#[async_trait]
impl tributary_storage::read::TraceSource for Head {
    async fn select_spans(&self, req: &tributary_storage::read::SpanRequest) -> tributary_storage::Result<Vec<Span>> {
        let mut out = Vec::new();
        self.signal_blocks(|b| b.spans_matching(req, &mut out));
        tributary_storage::read::sort_spans(&mut out);
        req.check_count(out.len())?;
        Ok(out)
    }
}

#[async_trait]
impl LogSource for Head {
    async fn select_logs(&self, req: &LogRequest) -> tributary_storage::Result<Vec<LogRecord>> {
        Ok(self.logs_in_memory(req))
    }

    /// Counted from the records in memory, without copying them.
    async fn log_volume(&self, req: &VolumeRequest) -> tributary_storage::Result<Vec<StreamVolume>> {
        req.check()?;
        let mut sum = VolumeSum::default();
        self.signal_blocks(|b| b.volume_matching(req, &mut sum));
        Ok(sum.finish())
    }

    /// Clustered from the newest `max_lines` records in memory, copying only their bodies (a
    /// record held twice, by two blocks during a flush or by one after a client's retry, may
    /// count twice, as the contract allows).
    async fn log_patterns(&self, req: &PatternRequest) -> tributary_storage::Result<Patterns> {
        req.check()?;
        let mut lines = Vec::new();
        let mut truncated = self
            .signal_blocks(|b| b.pattern_lines_matching(req, &mut lines))
            .into_iter()
            .any(|more| more);
        // Newest first, as the default reads them, so Drain sees the same order.
        lines.sort_unstable_by_key(|l| std::cmp::Reverse(l.0));
        if lines.len() > req.max_lines {
            lines.truncate(req.max_lines);
            truncated = true;
        }
        let mut sum = PatternSum::default();
        for (ts, level, body) in &lines {
            sum.add_line(level, body, req.bucket_of(*ts));
        }
        if truncated {
            sum.truncate();
        }
        Ok(sum.finish())
    }

    async fn log_streams(&self, req: &LogRequest) -> tributary_storage::Result<Vec<Labels>> {
        let mut out = Vec::new();
        self.signal_blocks(|b| b.streams_matching(req, &mut out));
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

fn sorted(set: HashSet<String>) -> Vec<String> {
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort_unstable();
    v
}
