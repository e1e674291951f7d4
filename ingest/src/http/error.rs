//! The one mapping from ingest errors and write outcomes to protocol statuses: HTTP for
//! remote-write and Loki push, HTTP for OTLP (whose retry rules differ), and gRPC codes for
//! OTLP/gRPC. Handlers decide nothing themselves: a write's [`Outcome`] becomes a refusal (or
//! not) in `refusal`, an [`Error`] becomes a status here, and tonic's own decode failures are
//! rewritten here too.
//!
//! Remote-write senders retry 5xx and 429 and drop everything else, so a status here is a
//! promise: 4xx (but 429) only for data that can never succeed, 5xx/429 only for our own state.
//! OTLP clients retry only 429, 502, 503 and 504 (HTTP) and UNAVAILABLE (gRPC; RESOURCE_EXHAUSTED
//! only with RetryInfo), so every failure of ours maps to 503 / UNAVAILABLE there, but a
//! cluster's rate limit, which is 429 with its `Retry-After` (HTTP) and RESOURCE_EXHAUSTED with a
//! `google.rpc.RetryInfo` detail (gRPC).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::decode::{Kind, Outcome};
use crate::error::{Error, ErrorKind};

/// The HTTP status of remote-write and Loki push.
pub fn status(e: &Error) -> StatusCode {
    match e.kind() {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The OTLP/HTTP status: as [`status`], but our own faults are 503 so OTLP clients retry them.
pub fn otlp_status(e: &Error) -> StatusCode {
    match e.kind() {
        ErrorKind::Internal => StatusCode::SERVICE_UNAVAILABLE,
        _ => status(e),
    }
}

/// The OTLP/gRPC code.
pub fn grpc_code(e: &Error) -> tonic::Code {
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::PayloadTooLarge | ErrorKind::UnsupportedMediaType => {
            tonic::Code::InvalidArgument
        }
        ErrorKind::Unauthorized => tonic::Code::Unauthenticated,
        ErrorKind::Forbidden => tonic::Code::PermissionDenied,
        ErrorKind::NotImplemented => tonic::Code::Unimplemented,
        ErrorKind::TooManyRequests | ErrorKind::Unavailable | ErrorKind::Internal => tonic::Code::Unavailable,
    }
}

/// The OTLP/gRPC status of a failed export. A rate limit is RESOURCE_EXHAUSTED with the
/// `RetryInfo` detail that makes OTLP clients retry it after the delay.
pub(crate) fn grpc_status(e: &Error) -> tonic::Status {
    if let Error::RateLimited { retry_after, .. } = e {
        return tonic::Status::with_details(
            tonic::Code::ResourceExhausted,
            e.to_string(),
            retry_info(tonic::Code::ResourceExhausted, &e.to_string(), *retry_after).into(),
        );
    }
    if e.retryable() {
        tracing::error!(error = %e, "OTLP gRPC export failed");
    }
    tonic::Status::new(grpc_code(e), e.to_string())
}

/// `google.rpc.Status` carrying one `google.rpc.RetryInfo`, protobuf-encoded (the
/// `grpc-status-details-bin` trailer).
fn retry_info(code: tonic::Code, message: &str, delay: std::time::Duration) -> Vec<u8> {
    #[derive(prost::Message)]
    struct Duration {
        #[prost(int64, tag = "1")]
        seconds: i64,
        #[prost(int32, tag = "2")]
        nanos: i32,
    }
    #[derive(prost::Message)]
    struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        retry_delay: Option<Duration>,
    }
    #[derive(prost::Message)]
    struct Any {
        #[prost(string, tag = "1")]
        type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        value: Vec<u8>,
    }
    #[derive(prost::Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<Any>,
    }
    use prost::Message as _;
    let info = RetryInfo {
        retry_delay: Some(Duration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    Status {
        code: code as i32,
        message: message.to_string(),
        details: vec![Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_string(),
            value: info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

/// Whether an OTLP/HTTP failure carries `Retry-After` (exactly the ones a client may retry).
pub(crate) fn otlp_retry_after(e: &Error) -> Option<HeaderValue> {
    e.retry_after_secs().map(HeaderValue::from)
}

/// How a protocol answers a write that stored what it could: `Some(error)` when its outcome is a
/// refusal (the error's kind then decides the status as for any other failure).
///
/// - remote-write (both versions): any refused series or item is a 400 naming them; the rest was
///   stored (a 400 is not retried, so the valid data had to be kept);
/// - Loki push: any refused entry is a 400, as Loki's distributor answers;
/// - Zipkin: any refused span is a 400 naming it (Zipkin has no partial answer; not retried);
/// - OTLP: refusals beside accepted items are a 200 with `partial_success` ([`otlp_partial`]);
///   a request with nothing valid is a 400 (retrying cannot help).
pub(crate) fn refusal(kind: Kind, o: &Outcome) -> Option<Error> {
    let r = &o.rejected;
    if r.is_empty() {
        return None;
    }
    match kind {
        Kind::PromRemoteWriteV1 | Kind::PromRemoteWriteV2 => Some(Error::InvalidInput(r.message())),
        Kind::LokiPushProtobuf | Kind::LokiPushJson => Some(Error::InvalidInput(format!(
            "rejected {} entries, the rest was stored: {}",
            r.log_records,
            r.reasons_text()
        ))),
        Kind::OtlpMetrics => (o.accepted.points == 0).then(|| {
            Error::InvalidInput(format!(
                "every data point was rejected ({}): {}",
                r.points,
                r.reasons_text()
            ))
        }),
        Kind::OtlpLogs => (o.accepted.log_records == 0).then(|| {
            Error::InvalidInput(format!(
                "every log record was rejected ({}): {}",
                r.log_records,
                r.reasons_text()
            ))
        }),
        Kind::ZipkinJson => Some(Error::InvalidInput(format!(
            "rejected {} spans, the rest was stored: {}",
            r.spans,
            r.reasons_text()
        ))),
        Kind::OtlpTraces => (o.accepted.spans == 0)
            .then(|| Error::InvalidInput(format!("every span was rejected ({}): {}", r.spans, r.reasons_text()))),
    }
}

/// The success status of a remote-write whose outcome is no refusal: 202 when the HA tracker
/// dropped its series (a non-elected replica: Mimir's answer, which Prometheus does not retry),
/// else 204.
pub(crate) fn remote_write_success(o: &Outcome) -> StatusCode {
    if o.deduplicated > 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::NO_CONTENT
    }
}

/// OTLP's `partial_success` of an accepted export: the refused count and the reasons, when
/// something was refused.
pub(crate) fn otlp_partial(kind: Kind, o: &Outcome) -> Option<(i64, String)> {
    let rejected = match kind {
        Kind::OtlpLogs => o.rejected.log_records,
        Kind::OtlpTraces => o.rejected.spans,
        _ => o.rejected.points,
    };
    (rejected > 0).then(|| (i64::try_from(rejected).unwrap_or(i64::MAX), o.rejected.reasons_text()))
}

/// Status plus the reason as a plain-text body (what Prometheus logs), and `Retry-After` on pressure.
pub fn response(e: &Error) -> Response {
    let status = status(e);
    if status.is_server_error() {
        tracing::error!(error = %e, "write failed");
    } else {
        tracing::debug!(error = %e, "write refused");
    }
    let mut r = (status, format!("{e}\n")).into_response();
    if matches!(e.kind(), ErrorKind::TooManyRequests | ErrorKind::Unavailable)
        && let Some(secs) = e.retry_after_secs()
    {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// tonic answers a request it cannot decode (bad protobuf, invalid UTF-8, a message over the
/// size limit) with INTERNAL or OUT_OF_RANGE before our handler runs. OTLP clients must not
/// retry bad data, and our own handlers never answer either code, so such a trailers-only answer
/// is rewritten to INVALID_ARGUMENT, keeping tonic's message.
pub(crate) fn grpc_decode_errors_are_permanent<B>(
    mut r: tonic::codegen::http::Response<B>,
) -> tonic::codegen::http::Response<B> {
    let code = r.headers().get("grpc-status").and_then(|v| v.to_str().ok());
    if matches!(code, Some("13") | Some("11")) {
        r.headers_mut()
            .insert("grpc-status", tonic::codegen::http::HeaderValue::from_static("3"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_agree_with_retryability() {
        let cases = [
            Error::InvalidInput("x".into()),
            Error::Unauthorized("x".into()),
            Error::Forbidden("x".into()),
            Error::PayloadTooLarge {
                what: "body",
                actual: 2,
                limit: 1,
            },
            Error::UnsupportedMediaType("x".into()),
            Error::TooManyRequests("x".into()),
            Error::Unavailable("x".into()),
        ];
        for e in &cases {
            let s = status(e);
            // Prometheus retries exactly 5xx and 429.
            let sender_retries = s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS;
            assert_eq!(sender_retries, e.retryable(), "{e:?} -> {s}");
            // OTLP/HTTP retries exactly 429, 502, 503, 504; OTLP/gRPC retries UNAVAILABLE.
            let o = otlp_status(e);
            let otlp_retries = matches!(o.as_u16(), 429 | 502 | 503 | 504);
            assert_eq!(otlp_retries, e.retryable(), "{e:?} -> {o}");
            assert_eq!(grpc_code(e) == tonic::Code::Unavailable, e.retryable(), "{e:?}");
        }
        assert_eq!(
            otlp_status(&Error::Unavailable("x".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // What we do not serve is final: no OTLP client retries 501/UNIMPLEMENTED.
        let traces = Error::NotImplemented("traces".into());
        assert!(!traces.retryable());
        assert_eq!(otlp_status(&traces), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(grpc_code(&traces), tonic::Code::Unimplemented);
        assert!(otlp_retry_after(&traces).is_none());
    }

    fn outcome(points: u64, log_records: u64, rejected_points: u64, rejected_records: u64) -> Outcome {
        Outcome {
            accepted: crate::decode::Accepted {
                points,
                log_records,
                ..Default::default()
            },
            rejected: crate::decode::Rejections {
                points: rejected_points,
                log_records: rejected_records,
                reasons: vec!["bad".into()],
                ..Default::default()
            },
            deduplicated: 0,
        }
    }

    /// Each protocol's rule for a write that stored part of a request (see [`refusal`]).
    #[test]
    fn refusals_follow_each_protocol() {
        let clean = Outcome::default();
        for kind in Kind::ALL {
            assert!(refusal(kind, &clean).is_none(), "{kind:?}");
        }
        // OTLP: partial success is a 200 with partial_success; nothing valid is a 400.
        assert!(refusal(Kind::OtlpMetrics, &outcome(3, 0, 2, 0)).is_none());
        assert_eq!(
            otlp_partial(Kind::OtlpMetrics, &outcome(3, 0, 2, 0)),
            Some((2, "bad".into()))
        );
        let all = refusal(Kind::OtlpMetrics, &outcome(0, 0, 2, 0)).unwrap();
        assert_eq!(status(&all), StatusCode::BAD_REQUEST);
        assert!(all.to_string().contains("every data point was rejected (2)"), "{all}");
        assert!(refusal(Kind::OtlpLogs, &outcome(0, 1, 0, 4)).is_none());
        assert_eq!(
            otlp_partial(Kind::OtlpLogs, &outcome(0, 1, 0, 4)),
            Some((4, "bad".into()))
        );
        let all = refusal(Kind::OtlpLogs, &outcome(0, 0, 0, 4)).unwrap();
        assert!(all.to_string().contains("every log record was rejected (4)"), "{all}");
        // Loki push and remote-write: any refusal is a 400, the rest having been stored.
        let loki = refusal(Kind::LokiPushJson, &outcome(0, 5, 0, 1)).unwrap();
        assert_eq!(loki.to_string(), "rejected 1 entries, the rest was stored: bad");
        let mut rw = Outcome::default();
        rw.rejected.series = 1;
        rw.rejected.samples = 3;
        let rw = refusal(Kind::PromRemoteWriteV2, &rw).unwrap();
        assert!(rw.to_string().starts_with("rejected 1 series (3 samples)"), "{rw}");
    }
}
