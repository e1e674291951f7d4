//! `POST /api/v1/read`: Prometheus remote-read, so a Prometheus configured with `remote_read`
//! queries Tributary's raw samples with its own engine.
//!
//! The request is a snappy-compressed `prometheus.ReadRequest`; each query's matchers (any
//! label, `cluster` included) select series in `[start, end]` through the request's scoped
//! engine, so read scopes apply as on every query endpoint. The answer is the first type in
//! `accepted_response_types` (none: samples), as Prometheus's own server negotiates it:
//!
//! - `SAMPLES`: a snappy-compressed `ReadResponse`, one result per query;
//! - `STREAMED_XOR_CHUNKS`: frames of `ChunkedReadResponse` (see `tributary_proto`'s `read`
//!   module for the framing), each series' samples cut into XOR chunks of at most
//!   [`MAX_SAMPLES_PER_CHUNK`], a frame holding series until it passes [`FRAME_BYTES`].
//!
//! The samples all queries of a request load together are held to `query.max_samples` (or the
//! token's `max_samples`), counted before any is read; the whole read runs within the query
//! timeout. Native histograms are not answered yet: a query that finds some fails naming them
//! (never an answer that silently leaves them out).

use axum::body::Bytes;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tributary_proto::prometheus::read::{
    Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, LabelMatcher, MatcherType, Query, QueryResult,
    ReadRequest, ReadResponse, ResponseType,
};
use tributary_proto::prometheus::{Label as WireLabel, Sample as WireSample, TimeSeries};
use tributary_proto::prost::Message;
use tributary_storage::read::SelectRequest;
use tributary_storage::types::{MatchOp, Matcher, Series, TimeRange};

use super::access::Reader;
use super::error::PromError;
use crate::error::Error;
use crate::promql::Engine;
use tributary_storage::xor_chunk::{MAX_SAMPLES_PER_CHUNK, XorChunk};

/// The streamed answer's content type, as Prometheus's client checks it.
const STREAMED_CONTENT_TYPE: &str = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// A frame is closed once its series pass this many bytes (Prometheus's own server uses 1 MiB).
const FRAME_BYTES: usize = 1 << 20;

/// The largest decompressed request accepted; a read request is matchers and times only.
const MAX_REQUEST_BYTES: usize = 32 << 20;

#[tracing::instrument(name = "api.remote_read", skip_all)]
pub(crate) async fn read(Reader(engine, _slot): Reader<Engine>, body: Bytes) -> Result<Response, PromError> {
    let request = decode(&body)?;
    let streamed = match request.accepted_response_types.first() {
        None => false,
        Some(&t) => match ResponseType::try_from(t) {
            Ok(ResponseType::Samples) => false,
            Ok(ResponseType::StreamedXorChunks) => true,
            Err(_) => {
                return Err(Error::BadData(format!("remote read: unknown response type {t}")).into());
            }
        },
    };
    let queries = request
        .queries
        .iter()
        .map(select_request)
        .collect::<Result<Vec<_>, Error>>()?;
    let results = engine.within_timeout(load(&engine, &queries)).await?;
    if streamed {
        Ok(streamed_response(results))
    } else {
        Ok(sampled_response(results))
    }
}

fn decode(body: &[u8]) -> Result<ReadRequest, Error> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Error::BadData(format!("remote read: the body is not snappy-compressed: {e}")))?;
    if len > MAX_REQUEST_BYTES {
        return Err(Error::BadData(format!(
            "remote read: the request decompresses to {len} bytes, more than {MAX_REQUEST_BYTES}"
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Error::BadData(format!("remote read: the body is not snappy-compressed: {e}")))?;
    ReadRequest::decode(raw.as_slice())
        .map_err(|e| Error::BadData(format!("remote read: the body is not a prometheus.ReadRequest: {e}")))
}

fn select_request(q: &Query) -> Result<SelectRequest, Error> {
    if q.end_timestamp_ms < q.start_timestamp_ms {
        return Err(Error::BadData("remote read: a query ends before it starts".into()));
    }
    let matchers = q.matchers.iter().map(matcher).collect::<Result<Vec<_>, _>>()?;
    Ok(SelectRequest::new(
        matchers,
        TimeRange::new(q.start_timestamp_ms, q.end_timestamp_ms),
    ))
}

fn matcher(m: &LabelMatcher) -> Result<Matcher, Error> {
    let op = match MatcherType::try_from(m.r#type) {
        Ok(MatcherType::Eq) => MatchOp::Equal,
        Ok(MatcherType::Neq) => MatchOp::NotEqual,
        Ok(MatcherType::Re) => MatchOp::RegexMatch,
        Ok(MatcherType::Nre) => MatchOp::RegexNoMatch,
        Err(_) => {
            return Err(Error::BadData(format!(
                "remote read: unknown matcher type {}",
                m.r#type
            )));
        }
    };
    Matcher::new(op, m.name.clone(), m.value.clone())
        .map_err(|e| Error::BadData(format!("remote read: invalid regex {:?}: {e}", m.value)))
}

/// Every query's series, sorted by labels, once the samples of them all are known to fit the
/// sample limit.
async fn load(engine: &Engine, queries: &[SelectRequest]) -> Result<Vec<Vec<Series>>, Error> {
    let source = engine.source();
    let max = engine.max_samples();
    let mut total = 0usize;
    for q in queries {
        total = total.saturating_add(source.count_samples(q, max.saturating_sub(total)).await?);
        if total > max {
            return Err(Error::TooManySamples);
        }
    }
    let mut results = Vec::with_capacity(queries.len());
    for q in queries {
        let histograms = source.select_histograms(q).await?;
        if let Some(h) = histograms.iter().find(|h| !h.samples.is_empty()) {
            return Err(Error::unsupported(format!(
                "remote read of native histograms (series {})",
                h.labels
            )));
        }
        let mut series = source.select(q).await?;
        series.retain(|s| !s.samples.is_empty());
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        results.push(series);
    }
    Ok(results)
}

fn wire_labels(s: &Series) -> Vec<WireLabel> {
    s.labels
        .iter()
        .map(|l| WireLabel {
            name: l.name.to_string(),
            value: l.value.to_string(),
        })
        .collect()
}

fn sampled_response(results: Vec<Vec<Series>>) -> Response {
    let response = ReadResponse {
        results: results
            .iter()
            .map(|series| QueryResult {
                timeseries: series
                    .iter()
                    .map(|s| TimeSeries {
                        labels: wire_labels(s),
                        samples: s
                            .samples
                            .iter()
                            .map(|p| WireSample {
                                value: p.value,
                                timestamp: p.timestamp,
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
    };
    let compressed = snap::raw::Encoder::new().compress_vec(&response.encode_to_vec());
    match compressed {
        Ok(body) => (
            StatusCode::OK,
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf")),
                (CONTENT_ENCODING, HeaderValue::from_static("snappy")),
            ],
            body,
        )
            .into_response(),
        Err(e) => PromError(Error::Internal(format!("remote read: snappy: {e}"))).into_response(),
    }
}

fn streamed_response(results: Vec<Vec<Series>>) -> Response {
    let mut body = Vec::new();
    for (index, series) in results.iter().enumerate() {
        let mut frame = ChunkedReadResponse {
            chunked_series: Vec::new(),
            query_index: index as i64,
        };
        let mut frame_bytes = 0;
        for s in series {
            let mut chunked = ChunkedSeries {
                labels: wire_labels(s),
                chunks: Vec::new(),
            };
            for samples in s.samples.chunks(MAX_SAMPLES_PER_CHUNK) {
                let mut chunk = XorChunk::new();
                for p in samples {
                    chunk.push(p.timestamp, p.value);
                }
                let (min_time_ms, max_time_ms) = chunk.time_range();
                let data = chunk.into_bytes();
                frame_bytes += data.len();
                chunked.chunks.push(Chunk {
                    min_time_ms,
                    max_time_ms,
                    r#type: ChunkEncoding::Xor as i32,
                    data,
                });
                // A long series continues in the next frame under the same labels, as
                // Prometheus's server splits it.
                if frame_bytes >= FRAME_BYTES {
                    let labels = chunked.labels.clone();
                    frame.chunked_series.push(std::mem::replace(
                        &mut chunked,
                        ChunkedSeries {
                            labels,
                            chunks: Vec::new(),
                        },
                    ));
                    write_frame(&mut body, &frame);
                    frame.chunked_series.clear();
                    frame_bytes = 0;
                }
            }
            if !chunked.chunks.is_empty() {
                frame.chunked_series.push(chunked);
            }
        }
        if !frame.chunked_series.is_empty() {
            write_frame(&mut body, &frame);
        }
    }
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static(STREAMED_CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// One frame: uvarint length, CRC32-Castagnoli of the message (big-endian), the message.
fn write_frame(out: &mut Vec<u8>, frame: &ChunkedReadResponse) {
    let message = frame.encode_to_vec();
    let mut len = message.len() as u64;
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(&crc32c::crc32c(&message).to_be_bytes());
    out.extend_from_slice(&message);
}

#[cfg(test)]
mod tests;
