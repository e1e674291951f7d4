//! What must hold for every OTLP request the `otlp_metrics` and `otlp_logs` targets decode.
//!
//! The harness follows the ingester: an OTLP/HTTP body is gunzipped (when `Content-Encoding: gzip`)
//! with a limit, parsed as protobuf or OTLP/JSON by `decode::otlp::parse` (gRPC bodies are the same
//! protobuf), translated by `otlp_metrics::translate` / `otlp_logs::translate` with the ingester's
//! live limits, written to the WAL as `otlp::to_wal_body`, and on replay read back with
//! `otlp::from_wal_body` (under the replay bound `Ingester` uses) and translated again with the
//! limits unbounded. Each step is held to its contract here; every check panics, which libFuzzer
//! reports as a crash with the input.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::{LazyLock, OnceLock};

use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::compression::gunzip;
use tributary_ingest::decode::otlp::logs::{self as otlp_logs, TranslatedLogs};
use tributary_ingest::decode::otlp::metrics::{self as otlp_metrics, TARGET_INFO, Translated};
use tributary_ingest::decode::otlp::{self, BodyFormat, OtlpRequest};
use tributary_ingest::decode::{Limits, MAX_STORABLE_MS, MIN_STORABLE_MS};
use tributary_ingest::error::Error;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use tributary_proto::otlp::logs::v1::LogRecord as OtlpLogRecord;
use tributary_proto::otlp::metrics::v1::metric::Data;
use tributary_storage::signals::LogRecord;
use tributary_storage::types::{CLUSTER, EXPORTED_CLUSTER, Labels};

use crate::{UNBOUNDED_LIMITS, check_owned_labels, check_signals, is_label_name};

/// Live label limits: an OTLP series carries more labels than a typical remote-write one (`job`,
/// `instance`, scope, promoted attributes), so a little more room than [`crate::SMALL_LIMITS`], still
/// small enough that fuzzed points cross every limit.
pub const OTLP_LIMITS: Limits = Limits {
    max_labels_per_series: 12,
    max_label_name_bytes: 32,
    max_label_value_bytes: 40,
};

/// The decompression limit for gzip bodies: small, so fuzzed inputs land on both sides of it.
pub const GZIP_LIMIT: usize = 2048;
/// The token's cluster, when the request runs under a token.
pub const TOKEN: &str = "fuzz-token";
/// The header's cluster, when the request carries one.
pub const HEADER: &str = "fuzz-header";

/// Resource attributes promoted onto metric series: the default two, plus names the translation
/// must refuse to promote or must override (`k8s.cluster.name`, `cluster`, `__name__`, `job`).
static PROMOTE: LazyLock<Vec<String>> = LazyLock::new(|| {
    [
        "k8s.namespace.name",
        "k8s.pod.name",
        "k8s.cluster.name",
        "cluster",
        "exported_cluster",
        "__name__",
        "job",
        "1st.attr",
    ]
    .map(String::from)
    .to_vec()
});

/// Log stream attributes: Loki's defaults, plus names the cluster rule owns and names that need
/// normalising or have nothing usable.
static STREAM: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut s = otlp_logs::default_stream_attributes();
    s.extend(["cluster", "exported_cluster", "1st.attr", "...", ""].map(String::from));
    s
});

/// Live log limits: small, so fuzzed records cross them.
const MAX_LOG_ATTRIBUTES: usize = 16;
const MAX_LOG_BODY_BYTES: usize = 256;

/// `TRIBUTARY_FUZZ_VERBOSE=1` prints what each decode produced (to triage an input or check a seed).
pub(crate) fn verbose() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("TRIBUTARY_FUZZ_VERBOSE").is_some())
}

/// The contexts every parsed request is translated under: a token (with a header beside it,
/// which must lose), and no token, with the header or, when the input's last byte is odd, with
/// nothing (resources without `k8s.cluster.name` are then refused).
pub fn contexts(data: &[u8]) -> [ClusterContext; 2] {
    let header = data.last().is_none_or(|b| b & 1 == 0).then(|| HEADER.to_string());
    [
        ClusterContext {
            token_cluster: Some(TOKEN.to_string()),
            header_cluster: Some(HEADER.to_string()),
        },
        ClusterContext {
            token_cluster: None,
            header_cluster: header,
        },
    ]
}

/// Every request the ingester could parse out of `data`: the body as sent and, when it is gzip,
/// decompressed under [`GZIP_LIMIT`]; each as protobuf and as OTLP/JSON. Checks the
/// decompression limit on the way (see [`check_gzip_limit`]).
pub fn requests<R: OtlpRequest>(data: &[u8]) -> Vec<(&'static str, R)> {
    check_gzip_limit(data);
    let gunzipped = match gunzip(data, GZIP_LIMIT) {
        Ok(raw) => {
            assert!(raw.len() <= GZIP_LIMIT, "{} bytes over the limit", raw.len());
            Some(raw)
        }
        Err(Error::InvalidInput(_)) => None,
        Err(Error::PayloadTooLarge { actual, limit, .. }) => {
            assert!(actual > limit && limit == GZIP_LIMIT, "{actual} > {limit}");
            None
        }
        Err(e) => panic!("gunzip failed with a non-400 error: {e:?}"),
    };
    let mut out = Vec::new();
    for (encoding, body) in [("identity", Some(data)), ("gzip", gunzipped.as_deref())] {
        let Some(body) = body else { continue };
        for format in [BodyFormat::Protobuf, BodyFormat::Json] {
            match otlp::parse::<R>(body, format) {
                Ok(req) => {
                    let how = match (encoding, format) {
                        ("identity", BodyFormat::Protobuf) => "protobuf",
                        ("identity", BodyFormat::Json) => "json",
                        (_, BodyFormat::Protobuf) => "gzip protobuf",
                        (_, BodyFormat::Json) => "gzip json",
                    };
                    out.push((how, req));
                }
                Err(Error::InvalidInput(_)) => {}
                Err(e) => panic!("a bad {format:?} body must be a 400 (InvalidInput): {e:?}"),
            }
        }
    }
    out
}

/// The limit holds on our own gzip of the input, as one member and as two (the decoder reads
/// concatenated members): the result is the input exactly when it fits, `PayloadTooLarge` when
/// it does not.
pub fn check_gzip_limit(data: &[u8]) {
    let half = data.len() / 2;
    let one = gzip(data);
    let mut two = gzip(&data[..half]);
    two.extend(gzip(&data[half..]));
    for body in [one, two] {
        match gunzip(&body, GZIP_LIMIT) {
            Ok(raw) => {
                assert!(
                    data.len() <= GZIP_LIMIT,
                    "{} bytes through a {GZIP_LIMIT}-byte limit",
                    data.len()
                );
                assert!(raw == data, "gzip round trip changed the bytes");
            }
            Err(Error::PayloadTooLarge { actual, limit, .. }) => {
                assert!(
                    data.len() > GZIP_LIMIT,
                    "{} bytes refused by a {GZIP_LIMIT}-byte limit",
                    data.len()
                );
                assert!(actual > limit, "{actual} > {limit}");
            }
            Err(e) => panic!("our own gzip of {} bytes: {e:?}", data.len()),
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("writing to a Vec");
    e.finish().expect("writing to a Vec")
}

/// The WAL round trip: `to_wal_body`, then `from_wal_body` under the bound `Ingester`'s replay
/// uses, must give back the request (compared by encoding, so NaNs compare by bits).
pub(crate) fn wal_round_trip<R: OtlpRequest>(req: &R) -> R {
    let body = otlp::to_wal_body(req).expect("a request always compresses");
    let bound = body.len().saturating_mul(22).saturating_add(64);
    let back: R = otlp::from_wal_body(&body, bound).unwrap_or_else(|e| panic!("the WAL body does not replay: {e}"));
    assert!(
        back.encode_to_vec() == req.encode_to_vec(),
        "the request changed through the WAL"
    );
    back
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// Translates `req` as the ingester does under `ctx`, and checks the result, its determinism, the
/// WAL round trip, and replay (limits unbounded) against it.
pub fn check_metrics(how: &str, req: &ExportMetricsServiceRequest, ctx: &ClusterContext, add_suffixes: bool) {
    let live_opts = otlp_metrics::Options {
        promote_resource_attributes: &PROMOTE,
        add_suffixes,
        limits: OTLP_LIMITS,
    };
    let live = otlp_metrics::translate(req, ctx, &live_opts);
    if verbose() {
        eprintln!(
            "{how} metrics, {ctx:?}, suffixes {add_suffixes}: {} points, {} rejected, {} series, {} histograms, \
             {} exemplar series, {} metadata; {:?}",
            live.points,
            live.rejected_points,
            live.series.len(),
            live.histograms.len(),
            live.exemplars.len(),
            live.metadata.len(),
            live.reasons
        );
    }
    check_translated(req, &live, ctx, &OTLP_LIMITS);

    // WAL replay translates the request it reads back: it must see what the write saw.
    let back = wal_round_trip(req);
    let again = otlp_metrics::translate(&back, ctx, &live_opts);
    assert_eq!(
        fingerprint(&live),
        fingerprint(&again),
        "translating the same request twice (through the WAL) differs"
    );

    let replay_opts = otlp_metrics::Options {
        limits: UNBOUNDED_LIMITS,
        ..live_opts
    };
    let replay = otlp_metrics::translate(&back, ctx, &replay_opts);
    check_translated(req, &replay, ctx, &UNBOUNDED_LIMITS);
    assert_eq!(replay.points, live.points);
    assert!(
        replay.rejected_points <= live.rejected_points,
        "replay with unbounded limits refused more: {} > {}",
        replay.rejected_points,
        live.rejected_points
    );
    // Everything stored live is stored again on replay (a lowered limit never loses data).
    for s in &live.series {
        let r = replay
            .series
            .binary_search_by(|r| r.labels.cmp(&s.labels))
            .unwrap_or_else(|_| panic!("series {:?} lost on replay", s.labels));
        let have: BTreeSet<i64> = replay.series[r].samples.iter().map(|x| x.timestamp).collect();
        assert!(
            s.samples.iter().all(|x| have.contains(&x.timestamp)),
            "samples of {:?} lost on replay",
            s.labels
        );
    }
    for h in &live.histograms {
        assert!(
            replay.histograms.iter().any(|r| r.labels == h.labels),
            "histogram {:?} lost on replay",
            h.labels
        );
    }
}

/// Data points in the request, counted from the request itself.
fn sent_points(req: &ExportMetricsServiceRequest) -> u64 {
    let mut n = 0u64;
    for m in req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
    {
        n += match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64;
    }
    n
}

/// The contract of `otlp_metrics::translate` (its module docs and [`Translated`]'s fields).
fn check_translated(req: &ExportMetricsServiceRequest, t: &Translated, ctx: &ClusterContext, limits: &Limits) {
    // Conservation: every point is either accepted or rejected (partial_success counts the latter).
    assert_eq!(t.points, sent_points(req), "points seen != points sent");
    assert!(t.rejected_points <= t.points, "{} of {}", t.rejected_points, t.points);
    let accepted = t.points - t.rejected_points;
    assert!(t.reasons.len() <= otlp_metrics::MAX_REASONS, "{:?}", t.reasons);
    assert!(
        t.rejected_points == 0 || !t.reasons.is_empty(),
        "rejected without a reason"
    );
    let distinct: BTreeSet<&String> = t.reasons.iter().collect();
    assert_eq!(distinct.len(), t.reasons.len(), "repeated reasons: {:?}", t.reasons);
    assert_eq!(t.message().is_empty(), t.rejected_points == 0 && t.reasons.is_empty());
    if accepted == 0 {
        assert!(
            t.series.is_empty() && t.histograms.is_empty() && t.exemplars.is_empty() && t.metadata.is_empty(),
            "output without an accepted point: {t:?}"
        );
    } else {
        assert!(!t.metadata.is_empty(), "{accepted} points accepted, no metadata");
        assert!(
            !t.histograms.is_empty() || t.series.iter().any(|s| s.labels.metric_name() != Some(TARGET_INFO)),
            "{accepted} points accepted, nothing to store"
        );
    }

    // Series: sorted by labels, each label set valid and cluster-stamped; samples sorted, unique,
    // storable.
    assert!(
        t.series.windows(2).all(|w| w[0].labels < w[1].labels),
        "series not sorted and unique"
    );
    let own_clusters = own_clusters(req.resource_metrics.iter().map(|r| r.resource.as_ref()));
    let mut clusters = BTreeSet::new();
    for s in &t.series {
        check_owned_labels(&s.labels, ctx, limits);
        check_cluster(&s.labels, ctx, &own_clusters);
        clusters.insert(s.labels.get(CLUSTER).unwrap_or_default());
        assert!(!s.samples.is_empty(), "empty series {:?}", s.labels);
        assert!(
            s.samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp),
            "samples of {:?} not sorted and unique",
            s.labels
        );
        for x in &s.samples {
            assert!((MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&x.timestamp), "{x:?}");
        }
    }
    check_signals(&t.histograms, &t.exemplars, &t.metadata, ctx, limits);
    assert!(
        t.histograms.windows(2).all(|w| w[0].labels < w[1].labels),
        "histograms not sorted and unique"
    );
    for h in &t.histograms {
        check_cluster(&h.labels, ctx, &own_clusters);
        clusters.insert(h.labels.get(CLUSTER).unwrap_or_default());
        assert!(
            h.samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp),
            "histogram samples of {:?} not unique",
            h.labels
        );
    }
    // Exemplars hang off a stored series, sorted by time, with a valid label set of their own.
    for e in &t.exemplars {
        let on_series = t.series.binary_search_by(|s| s.labels.cmp(&e.labels)).is_ok()
            || t.histograms.iter().any(|h| h.labels == e.labels);
        assert!(on_series, "exemplars for {:?}, which is not stored", e.labels);
        assert!(
            e.exemplars.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
            "exemplars not sorted by time"
        );
        for x in &e.exemplars {
            let l: Vec<_> = x.labels.iter().collect();
            assert!(l.windows(2).all(|w| w[0].name < w[1].name), "{x:?}");
            assert!(
                l.iter().all(|l| !l.value.is_empty() && !l.name.starts_with("__")),
                "{x:?}"
            );
            for id in ["trace_id", "span_id"] {
                if let Some(v) = x.labels.get(id) {
                    assert!(is_lower_hex(v) && v.len() % 2 == 0, "{x:?}");
                }
            }
        }
    }
    // Metadata: one per (cluster, family) that has stored series.
    for m in &t.metadata {
        assert!(
            clusters.contains(m.cluster.as_str()),
            "metadata for a cluster with no series: {m:?}"
        );
        let family = |name: &str| {
            name == m.metric
                || name
                    .strip_prefix(m.metric.as_str())
                    .is_some_and(|rest| rest.starts_with('_'))
        };
        let stored = t
            .series
            .iter()
            .map(|s| &s.labels)
            .chain(t.histograms.iter().map(|h| &h.labels))
            .any(|l| l.get(CLUSTER) == Some(m.cluster.as_str()) && l.metric_name().is_some_and(family));
        assert!(stored, "metadata for a family with no series: {m:?}");
    }
}

/// The (non-empty) `k8s.cluster.name` values of the request's resources, as text.
fn own_clusters<'a>(
    resources: impl Iterator<Item = Option<&'a tributary_proto::otlp::resource::v1::Resource>>,
) -> BTreeSet<String> {
    resources
        .flatten()
        .flat_map(|r| &r.attributes)
        .filter(|kv| kv.key == otlp_metrics::K8S_CLUSTER_NAME)
        .map(|kv| text(kv.value.as_ref()))
        .filter(|v| !v.is_empty())
        .collect()
}

/// The cluster rule: the token's cluster when there is one; otherwise a resource's own cluster or
/// the header's.
fn check_cluster(labels: &Labels, ctx: &ClusterContext, own: &BTreeSet<String>) {
    assert!(
        cluster_allowed(labels, ctx, own),
        "cluster is neither the token's, nor a resource's, nor the header's: {labels:?} under {ctx:?}"
    );
}

fn cluster_allowed(labels: &Labels, ctx: &ClusterContext, own: &BTreeSet<String>) -> bool {
    let Some(cluster) = labels.get(CLUSTER) else {
        return false;
    };
    match &ctx.token_cluster {
        Some(token) => cluster == token,
        None => own.contains(cluster) || own.contains(ANY) || ctx.header_cluster.as_deref() == Some(cluster),
    }
}

/// A translation with every float by its bits (`Debug` prints every NaN alike, and stale markers
/// are NaNs).
fn fingerprint(t: &Translated) -> String {
    let bits: Vec<Vec<(i64, u64)>> = t
        .series
        .iter()
        .map(|s| s.samples.iter().map(|x| (x.timestamp, x.value.to_bits())).collect())
        .collect();
    let hist_bits: Vec<Vec<(u64, u64)>> = t
        .histograms
        .iter()
        .map(|h| h.samples.iter().map(|x| (x.count.to_bits(), x.sum.to_bits())).collect())
        .collect();
    format!("{t:?} {bits:?} {hist_bits:?}")
}

// ---------------------------------------------------------------------------------------------
// Logs

/// Translates `req` as the ingester does under `ctx`, and checks the result, its determinism, the
/// WAL round trip, and replay (limits unbounded) against it.
pub fn check_logs(how: &str, req: &ExportLogsServiceRequest, ctx: &ClusterContext) {
    let live_opts = otlp_logs::Options {
        stream_attributes: &STREAM,
        max_attributes: MAX_LOG_ATTRIBUTES,
        max_body_bytes: MAX_LOG_BODY_BYTES,
        max_label_value_bytes: 40,
        unknown_service: true,
    };
    let live = otlp_logs::translate(req, ctx, &live_opts);
    if verbose() {
        eprintln!(
            "{how} logs, {ctx:?}: {} records, {} rejected; {:?}",
            live.records.len(),
            live.rejected_records,
            live.reasons
        );
    }
    check_translated_logs(req, &live, ctx, &live_opts);

    let back = wal_round_trip(req);
    let again = otlp_logs::translate(&back, ctx, &live_opts);
    assert!(
        live == again,
        "translating the same request twice (through the WAL) differs"
    );

    let replay_opts = otlp_logs::Options {
        stream_attributes: &STREAM,
        max_attributes: usize::MAX,
        max_body_bytes: usize::MAX,
        max_label_value_bytes: usize::MAX,
        unknown_service: true,
    };
    let replay = otlp_logs::translate(&back, ctx, &replay_opts);
    check_translated_logs(req, &replay, ctx, &replay_opts);
    // Every record stored live is stored again on replay, in the same order.
    let mut rest = replay.records.iter();
    for r in &live.records {
        assert!(rest.any(|x| x == r), "record lost on replay: {r:?}");
    }
}

/// The contract of `otlp_logs::translate` (its module docs).
fn check_translated_logs(
    req: &ExportLogsServiceRequest,
    t: &TranslatedLogs,
    ctx: &ClusterContext,
    opts: &otlp_logs::Options<'_>,
) {
    let sent: u64 = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len() as u64)
        .sum();
    assert_eq!(
        t.records.len() as u64 + t.rejected_records,
        sent,
        "records kept + rejected != sent"
    );
    assert!(t.reasons.len() <= 10, "{:?}", t.reasons);
    assert_eq!(t.reasons.is_empty(), t.rejected_records == 0, "{:?}", t.reasons);

    for r in &t.records {
        check_record(r, ctx, opts);
    }
    // The records are the accepted ones, in request order: each is the translation of a request
    // record, and they embed in the request's records in order (greedy earliest matching finds an
    // embedding whenever there is one).
    let mut stored = t.records.iter().peekable();
    for rl in &req.resource_logs {
        let resource_attrs: &[KeyValue] = rl.resource.as_ref().map_or(&[], |r| &r.attributes);
        let own = own_clusters(std::iter::once(rl.resource.as_ref()));
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref();
            let scope_attrs: &[KeyValue] = scope.map_or(&[], |s| &s.attributes);
            for o in &sl.log_records {
                let Some(r) = stored.peek() else { continue };
                let cluster_ok = cluster_allowed(&r.labels, ctx, &own);
                let scope_ok = r.scope_name == scope.map_or("", |s| s.name.as_str())
                    && r.scope_version == scope.map_or("", |s| s.version.as_str());
                let attrs_ok = resource_attrs.len() + scope_attrs.len() + o.attributes.len() <= opts.max_attributes
                    && json_object_keys(&r.attributes) == keys(&[scope_attrs, &o.attributes])
                    && json_object_keys(&r.resource_attributes) == keys(&[resource_attrs]);
                if cluster_ok && scope_ok && attrs_ok && is_translation_of(r, o) {
                    stored.next();
                }
            }
        }
    }
    assert!(
        stored.peek().is_none(),
        "a record that is not the translation of a request record (in order, within the limits, \
         with its resource's cluster): {:?}",
        stored.peek()
    );
}

/// The distinct keys of attribute lists.
fn keys(attrs: &[&[KeyValue]]) -> BTreeSet<String> {
    attrs.iter().flat_map(|a| a.iter()).map(|kv| kv.key.clone()).collect()
}

/// Whether `r` is what `o` translates to, field by field where the translation is fixed.
fn is_translation_of(r: &LogRecord, o: &OtlpLogRecord) -> bool {
    let time = if o.time_unix_nano != 0 {
        o.time_unix_nano
    } else {
        o.observed_time_unix_nano
    };
    let body_ok = match o.body.as_ref().and_then(|b| b.value.as_ref()) {
        None => r.body.is_empty(),
        Some(any_value::Value::StringValue(s)) => r.body == *s,
        Some(_) => true,
    };
    i64::try_from(time).is_ok_and(|t| t == r.timestamp)
        && i64::try_from(o.observed_time_unix_nano).is_ok_and(|t| t == r.observed_timestamp)
        && r.severity_number == o.severity_number
        && r.severity_text == o.severity_text
        && r.flags == o.flags
        && r.event_name == o.event_name
        && r.trace_id == hex_id(&o.trace_id)
        && r.span_id == hex_id(&o.span_id)
        && body_ok
}

/// What holds for every stored record, whatever it came from.
fn check_record(r: &LogRecord, ctx: &ClusterContext, opts: &otlp_logs::Options<'_>) {
    assert!(r.timestamp > 0 && r.observed_timestamp >= 0, "{r:?}");
    assert!(
        r.trace_id.is_empty() || (r.trace_id.len() == 32 && is_lower_hex(&r.trace_id)),
        "{r:?}"
    );
    assert!(
        r.span_id.is_empty() || (r.span_id.len() == 16 && is_lower_hex(&r.span_id)),
        "{r:?}"
    );
    assert!(r.body.len() <= opts.max_body_bytes, "{r:?}");
    // Stream labels: sorted, unique, valid names, non-empty values, a cluster (the token's when
    // there is one; `exported_cluster` only beside a token).
    let labels: Vec<_> = r.labels.iter().collect();
    assert!(labels.windows(2).all(|w| w[0].name < w[1].name), "{:?}", r.labels);
    assert!(
        labels.iter().all(|l| is_label_name(&l.name) && !l.value.is_empty()),
        "{:?}",
        r.labels
    );
    let cluster = r
        .labels
        .get(CLUSTER)
        .unwrap_or_else(|| panic!("no cluster: {:?}", r.labels));
    match &ctx.token_cluster {
        Some(token) => assert_eq!(cluster, token, "the token's cluster must win: {:?}", r.labels),
        None => assert!(r.labels.get(EXPORTED_CLUSTER).is_none(), "{:?}", r.labels),
    }
    // Attributes are JSON objects (the keys are checked against the source).
    json_object_keys(&r.attributes);
    json_object_keys(&r.resource_attributes);
}

/// The keys of a JSON object; panics when `s` is not one.
fn json_object_keys(s: &str) -> BTreeSet<String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        other => panic!("not a JSON object: {s} ({other:?})"),
    }
}

/// Stands for a cluster attribute whose text form is not checked here.
const ANY: &str = "\u{0}any";

/// Lower-case hex of an id; `""` for an empty or all-zero id.
fn hex_id(id: &[u8]) -> String {
    if id.iter().all(|b| *b == 0) {
        return String::new();
    }
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// An attribute value as the cluster rule reads it: strings as is, scalars as text.
fn text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        // Doubles, bytes, arrays and maps have several spellings; accept any cluster for them.
        Some(_) => ANY.to_string(),
        None => String::new(),
    }
}
