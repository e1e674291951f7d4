//! The querier's end: [`RemoteSource`], the read contracts over any [`Transport`] (the querier's
//! is HTTP; the tests' calls [`super::answer`] directly, so the conformance suites check the
//! wire format itself).

use async_trait::async_trait;

use super::{Call, WireLogs, WireSelect, WireSpans, decode};
use crate::Result;
use crate::read::{
    LogRequest, LogSource, PatternRequest, Patterns, SelectRequest, SeriesSize, Source, SpanRequest, StreamVolume,
    TraceSource, VolumeRequest, Within,
};
use crate::signals::{ExemplarSeries, HistogramSeries, LogRecord, MetricMetadata, Span};
use crate::types::{Labels, Matcher, Series, TimeRange};

/// Carries one [`Call`] to a peer and brings back the body of its 2xx answer; any other answer
/// is an error ([`super::WireError::into_error`]).
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Posts `call`; the answer's body.
    async fn call(&self, call: &Call) -> Result<bytes::Bytes>;
}

/// Answers of at least this many bytes are decoded off the query's task (a few hundred
/// microseconds of decoding and more; below, a thread hand-off costs more than it saves).
const DECODE_APART_BYTES: usize = 64 * 1024;

/// A `select`'s wire request: chunks, unless one sample a series is asked for (then samples
/// are smaller).
fn select_of(req: &SelectRequest) -> WireSelect {
    let mut select = WireSelect::of(req);
    select.chunks = !req.newest_only;
    select
}

/// `decode` of `body`, a large body on a blocking thread: the answers of several ingesters,
/// which arrive together, are decoded in parallel, not one after the other on the query's task.
async fn decode_apart<T: Send + 'static>(
    body: bytes::Bytes,
    decode: impl FnOnce(bytes::Bytes) -> Result<T> + Send + 'static,
) -> Result<T> {
    if body.len() < DECODE_APART_BYTES {
        return decode(body);
    }
    tokio::task::spawn_blocking(move || decode(body))
        .await
        .map_err(|e| crate::Error::Task {
            op: "decoding an ingester's answer",
            reason: e.to_string(),
        })?
}

/// A peer's head as a [`Source`] and a [`LogSource`]. Its `select` answers come sorted by labels
/// (an order the contract leaves open), sorted as they are decoded, in parallel for several peers.
#[derive(Debug)]
pub struct RemoteSource<T> {
    transport: T,
}

impl<T: Transport> RemoteSource<T> {
    /// Reads through `transport`.
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }
}

#[async_trait]
impl<T: Transport> Source for RemoteSource<T> {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        let body = self.transport.call(&Call::Select(select_of(req))).await?;
        let range = req.range;
        decode_apart(body, move |body| decode::series(body, range)).await
    }

    async fn select_within(&self, req: &SelectRequest, budget: usize) -> Result<Within> {
        let call = Call::SelectWithin {
            select: select_of(req),
            budget,
        };
        let (body, range) = (self.transport.call(&call).await?, req.range);
        decode_apart(body, move |body| decode::within(body, range, budget)).await
    }

    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        decode::label_sets(&self.transport.call(&Call::Series(WireSelect::of(req))).await?)
    }

    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> Result<usize> {
        let call = Call::CountSamples {
            select: WireSelect::of(req),
            limit,
        };
        decode::json(&self.transport.call(&call).await?)
    }

    async fn series_samples(&self, req: &SelectRequest) -> Result<Vec<SeriesSize>> {
        decode::series_samples(&self.transport.call(&Call::SeriesSamples(WireSelect::of(req))).await?)
    }

    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        decode::json(&self.transport.call(&Call::LabelNames(WireSelect::of(req))).await?)
    }

    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        let call = Call::LabelValues {
            name: name.to_string(),
            select: WireSelect::of(req),
        };
        decode::json(&self.transport.call(&call).await?)
    }

    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        let call = Call::Exemplars {
            selectors: selectors.iter().map(|m| super::to_wire_matchers(m)).collect(),
            start: range.start,
            end: range.end,
        };
        decode::exemplars(&self.transport.call(&call).await?)
    }

    async fn select_histograms(&self, req: &SelectRequest) -> Result<Vec<HistogramSeries>> {
        decode::histograms(
            &self
                .transport
                .call(&Call::SelectHistograms(WireSelect::of(req)))
                .await?,
        )
    }

    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        let call = Call::Metadata {
            metric: metric.map(str::to_string),
        };
        decode::metadata(&self.transport.call(&call).await?)
    }
    // `select_buckets`: the trait's default (raw samples through `select`), as the head answers.
}

#[async_trait]
impl<T: Transport> LogSource for RemoteSource<T> {
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
        decode::logs(self.transport.call(&Call::SelectLogs(WireLogs::of(req))).await?)
    }

    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        decode::label_sets(&self.transport.call(&Call::LogStreams(WireLogs::of(req))).await?)
    }

    async fn log_volume(&self, req: &VolumeRequest) -> Result<Vec<StreamVolume>> {
        let call = Call::LogVolume {
            logs: WireLogs::of(&req.logs),
            origin: req.origin,
            step: req.step,
        };
        decode::volumes(&self.transport.call(&call).await?)
    }

    async fn log_patterns(&self, req: &PatternRequest) -> Result<Patterns> {
        let call = Call::LogPatterns {
            logs: WireLogs::of(&req.logs),
            step: req.step,
            max_lines: req.max_lines,
        };
        decode::json(&self.transport.call(&call).await?)
    }

    async fn log_label_names(&self, req: &LogRequest) -> Result<Vec<String>> {
        decode::json(&self.transport.call(&Call::LogLabelNames(WireLogs::of(req))).await?)
    }

    async fn log_label_values(&self, name: &str, req: &LogRequest) -> Result<Vec<String>> {
        let call = Call::LogLabelValues {
            name: name.to_string(),
            logs: WireLogs::of(req),
        };
        decode::json(&self.transport.call(&call).await?)
    }
}

#[async_trait]
impl<T: Transport> TraceSource for RemoteSource<T> {
    async fn select_spans(&self, req: &SpanRequest) -> Result<Vec<Span>> {
        let mut spans: Vec<Span> = decode::json(&self.transport.call(&Call::SelectSpans(WireSpans::of(req))).await?)?;
        // The filter does not travel: applied here to what the server answered.
        if let Some(f) = &req.filter {
            spans.retain(|s| f.0.matches(s));
        }
        req.check_count(spans.len())?;
        Ok(spans)
    }
}
