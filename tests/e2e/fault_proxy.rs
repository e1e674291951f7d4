//! A fault-injecting HTTP proxy in front of the S3 server: object storage that fails on cue.
//!
//! [`FaultProxy`] forwards every request to the upstream (moto) unchanged (same method, path,
//! headers, body; the client's SigV4 signature names the proxy's host, which it keeps) and
//! answers with the upstream's response, except requests a [`Rule`] picks, which get its
//! [`Fault`]: a `500 InternalError` or `503 SlowDown` with S3's XML error body, a hang past the
//! client's request timeout, a TCP reset (before or after the request reached the server), a
//! close without an answer, or a body read slowly. Rules match a method and a path substring,
//! fire on every `every`-th matching request and at most `times` times; the counts of faults
//! injected are kept per kind.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What happens to a request a rule picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `500 InternalError`, not forwarded.
    InternalError,
    /// `503 SlowDown` (S3's throttling answer), not forwarded.
    SlowDown,
    /// Forwarded (it takes effect), then the answer is held this long: past the client's request
    /// timeout the client gives up without knowing the request succeeded.
    Hang(Duration),
    /// The connection is reset (TCP RST) before the request is forwarded.
    Reset,
    /// Forwarded (it takes effect), then the connection is reset instead of answering.
    ResetAfterForward,
    /// Forwarded (it takes effect), then the connection is closed (FIN) instead of answering.
    CloseAfterForward,
    /// The request body is read at this many bytes per second, then forwarded.
    SlowUpload(u64),
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::InternalError => "internal_error",
            Fault::SlowDown => "slow_down",
            Fault::Hang(_) => "hang",
            Fault::Reset => "reset",
            Fault::ResetAfterForward => "reset_after_forward",
            Fault::CloseAfterForward => "close_after_forward",
            Fault::SlowUpload(_) => "slow_upload",
        }
    }
}

/// Which requests get a fault, and how often.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    fault: Fault,
    times: usize,
    every: usize,
    method: Option<String>,
    path_contains: Option<String>,
    matched: usize,
}

impl Rule {
    /// `fault` for the next matching request only (see [`Rule::times`], [`Rule::every`]).
    pub(crate) fn new(fault: Fault) -> Self {
        Self {
            fault,
            times: 1,
            every: 1,
            method: None,
            path_contains: None,
            matched: 0,
        }
    }

    /// Fire at most `n` times (`usize::MAX`: for as long as the rule is installed).
    pub(crate) fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    /// Fire on every `n`-th matching request (the `n`-th, `2n`-th, ...), not on each.
    pub(crate) fn every(mut self, n: usize) -> Self {
        self.every = n.max(1);
        self
    }

    /// Only requests with this method (`PUT`, `GET`, `POST`, ...).
    pub(crate) fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_string());
        self
    }

    /// Only requests whose path and query contain `s`.
    pub(crate) fn path_contains(mut self, s: &str) -> Self {
        self.path_contains = Some(s.to_string());
        self
    }

    /// Does this rule pick the request? Counts it toward `every` when it matches.
    fn pick(&mut self, method: &str, path: &str) -> Option<Fault> {
        if self.times == 0
            || self.method.as_deref().is_some_and(|m| m != method)
            || self.path_contains.as_deref().is_some_and(|p| !path.contains(p))
        {
            return None;
        }
        self.matched += 1;
        if !self.matched.is_multiple_of(self.every) {
            return None;
        }
        self.times -= 1;
        Some(self.fault)
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    injected: BTreeMap<&'static str, u64>,
    requests: u64,
    forwarded: u64,
}

/// The proxy, serving until dropped.
#[derive(Debug)]
pub(crate) struct FaultProxy {
    /// `http://127.0.0.1:<port>`: what the client uses as its S3 endpoint.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream` (`http://host:port`).
    pub(crate) async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fault proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            .build()
            .expect("proxy client");
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let server_state = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // A second descriptor of the socket, to set SO_LINGER 0 (close = RST) on it
                // when a fault asks for a reset while hyper owns the first.
                let std = socket.into_std().expect("into_std");
                let dup = std.try_clone().expect("dup socket");
                let socket = TcpStream::from_std(std).expect("from_std");
                let (hangup, mut hungup) = mpsc::unbounded_channel::<Hangup>();
                let (state, client, upstream) = (server_state.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (state, client, upstream, hangup) =
                            (state.clone(), client.clone(), upstream.clone(), hangup.clone());
                        async move { Ok::<_, Infallible>(handle(req, &state, &client, &upstream, &hangup).await) }
                    });
                    let conn =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), service);
                    tokio::select! {
                        _ = conn => {}
                        Some(how) = hungup.recv() => {
                            if how == Hangup::Reset {
                                let dup = TcpStream::from_std(dup).expect("from_std");
                                dup.set_zero_linger().expect("SO_LINGER 0");
                            }
                            // Both descriptors close here: with linger 0 an RST, else a FIN.
                        }
                    }
                });
            }
        });
        Self {
            endpoint,
            state,
            server,
        }
    }

    /// Installs a rule (rules are tried in the order added; the first that picks a request wins).
    pub(crate) fn add(&self, rule: Rule) {
        self.state.lock().rules.push(rule);
    }

    /// Fails the next `n` requests (any method, any path) with `fault`.
    pub(crate) fn fail_next(&self, n: usize, fault: Fault) {
        self.add(Rule::new(fault).times(n));
    }

    /// Removes every rule: from now on every request is forwarded untouched.
    pub(crate) fn clear(&self) {
        self.state.lock().rules.clear();
    }

    /// Faults injected so far, by kind (`internal_error`, `slow_down`, `hang`, `reset`,
    /// `reset_after_forward`, `close_after_forward`, `slow_upload`).
    pub(crate) fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.state.lock().injected.clone()
    }

    /// All faults injected so far.
    pub(crate) fn injected_total(&self) -> u64 {
        self.state.lock().injected.values().sum()
    }

    /// Requests received, and how many of them reached the upstream.
    pub(crate) fn requests(&self) -> (u64, u64) {
        let s = self.state.lock();
        (s.requests, s.forwarded)
    }

    /// The `AWS_*` environment pointing an S3 client at this proxy (credentials as for moto).
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Answer = Response<Full<Bytes>>;

/// How a connection is dropped instead of answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hangup {
    Reset,
    Close,
}

async fn handle(
    req: Request<Incoming>,
    state: &Mutex<State>,
    client: &reqwest::Client,
    upstream: &str,
    hangup: &mpsc::UnboundedSender<Hangup>,
) -> Answer {
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let fault = {
        let mut s = state.lock();
        s.requests += 1;
        let fault = s.rules.iter_mut().find_map(|r| r.pick(&method, &path));
        if let Some(f) = fault {
            *s.injected.entry(f.name()).or_default() += 1;
        }
        fault
    };
    let head = method == "HEAD";
    match fault {
        Some(Fault::InternalError) => return s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", head),
        Some(Fault::SlowDown) => return s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", head),
        Some(Fault::Reset) => return hang_up(hangup, Hangup::Reset).await,
        _ => {}
    }
    let (parts, mut body) = req.into_parts();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return s3_error(StatusCode::BAD_REQUEST, "IncompleteBody", head);
        };
        if let Ok(data) = frame.into_data() {
            if let Some(Fault::SlowUpload(rate)) = fault {
                tokio::time::sleep(Duration::from_secs_f64(data.len() as f64 / rate.max(1) as f64)).await;
            }
            bytes.extend_from_slice(&data);
        }
    }
    let answer = forward(client, upstream, parts, bytes).await;
    state.lock().forwarded += 1;
    match fault {
        Some(Fault::Hang(d)) => tokio::time::sleep(d).await,
        Some(Fault::ResetAfterForward) => return hang_up(hangup, Hangup::Reset).await,
        Some(Fault::CloseAfterForward) => return hang_up(hangup, Hangup::Close).await,
        _ => {}
    }
    answer
}

/// Asks the connection task to drop the socket, then never answers.
async fn hang_up(hangup: &mpsc::UnboundedSender<Hangup>, how: Hangup) -> Answer {
    let _ = hangup.send(how);
    std::future::pending().await
}

/// Sends the request to the upstream; its answer, or a 502 when it cannot be reached.
async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    parts: hyper::http::request::Parts,
    body: Vec<u8>,
) -> Answer {
    let url = format!("{upstream}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut req = client.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name.as_str()) && name != "content-length" {
            req = req.header(name, value);
        }
    }
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Full::new(Bytes::from(format!("fault proxy: upstream: {e}"))))
                .expect("response");
        }
    };
    let mut answer = Response::builder().status(r.status().as_u16());
    for (name, value) in r.headers() {
        if !hop_by_hop(name.as_str()) {
            answer = answer.header(name.as_str(), value.as_bytes());
        }
    }
    let body = r.bytes().await.unwrap_or_default();
    answer.body(Full::new(body)).expect("response")
}

fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "proxy-connection"
    )
}

/// An S3 error answer (`<Error><Code>…</Code>…`), which object_store reads as retryable.
fn s3_error(status: StatusCode, code: &str, head: bool) -> Answer {
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>injected by the fault proxy</Message><RequestId>fault-proxy</RequestId></Error>"
        ))
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(body))
        .expect("response")
}
