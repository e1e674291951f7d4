use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::*;

/// A receiver that answers from a script (then 204 forever) and records what it got.
#[derive(Default)]
struct Script {
    answers: Vec<(StatusCode, Option<&'static str>)>,
    received: Vec<String>,
    encodings: Vec<String>,
}

async fn serve(script: Script) -> (String, Arc<Mutex<Script>>) {
    let state = Arc::new(Mutex::new(script));
    let app = axum::Router::new()
        .route(
            "/api/v1/write",
            post(
                |State(s): State<Arc<Mutex<Script>>>, headers: HeaderMap, body: Bytes| async move {
                    let mut s = s.lock().expect("lock");
                    s.received.push(String::from_utf8_lossy(&body).into_owned());
                    s.encodings.push(
                        headers
                            .get("content-encoding")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    let (status, retry_after) = if s.answers.is_empty() {
                        (StatusCode::NO_CONTENT, None)
                    } else {
                        s.answers.remove(0)
                    };
                    let mut h = HeaderMap::new();
                    if let Some(r) = retry_after {
                        h.insert("retry-after", r.parse().expect("header"));
                    }
                    (status, h, "scripted")
                },
            ),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/api/v1/write"), state)
}

fn queues(n: usize, per_queue: usize) -> Vec<mpsc::Receiver<Prepared>> {
    (0..n)
        .map(|q| {
            let (tx, rx) = mpsc::channel(per_queue.max(1));
            for i in 0..per_queue {
                let body = Bytes::from(format!("{q}:{i}"));
                tx.try_send(Prepared { body, samples: 10 }).expect("capacity");
            }
            rx
        })
        .collect()
}

fn fast(url: String) -> Options {
    Options {
        url,
        min_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..Options::default()
    }
}

#[tokio::test]
async fn sends_every_queue_in_order() {
    let (url, state) = serve(Script::default()).await;
    let mut out = replay(queues(3, 20), &fast(url)).await.expect("replay");
    assert_eq!((out.requests, out.requests_ok, out.requests_failed), (60, 60, 0));
    assert_eq!(out.samples_acked, 600);
    assert_eq!(out.bytes_sent, 3 * (10 * 3 + 10 * 4));
    assert!(out.errors_by_status.is_empty());
    assert!(out.latency_ms(0.99).is_some());
    let s = state.lock().expect("lock");
    assert!(s.encodings.iter().all(|e| e == "snappy"));
    for q in 0..3 {
        let seq: Vec<usize> = s
            .received
            .iter()
            .filter_map(|r| r.split_once(':'))
            .filter(|(queue, _)| *queue == q.to_string())
            .map(|(_, i)| i.parse().expect("seq"))
            .collect();
        assert_eq!(seq, (0..20).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn retries_5xx_and_429_until_acked() {
    let answers = vec![
        (StatusCode::SERVICE_UNAVAILABLE, None),
        (StatusCode::TOO_MANY_REQUESTS, Some("0")),
        (StatusCode::INTERNAL_SERVER_ERROR, None),
    ];
    let (url, state) = serve(Script {
        answers,
        ..Script::default()
    })
    .await;
    let out = replay(queues(1, 4), &fast(url)).await.expect("replay");
    assert_eq!((out.requests, out.requests_ok, out.retries), (4, 4, 3));
    assert_eq!(out.samples_acked, 40);
    assert_eq!(out.errors_by_status.get("503"), Some(&1));
    assert_eq!(out.errors_by_status.get("429"), Some(&1));
    assert_eq!(out.errors_by_status.get("500"), Some(&1));
    assert_eq!(state.lock().expect("lock").received[..4], ["0:0", "0:0", "0:0", "0:0"]);
    assert!(out.error_examples[0].contains("scripted"));
}

#[tokio::test]
async fn drops_other_4xx_without_retrying() {
    let (url, _state) = serve(Script {
        answers: vec![(StatusCode::BAD_REQUEST, None)],
        ..Script::default()
    })
    .await;
    let out = replay(queues(1, 3), &fast(url)).await.expect("replay");
    assert_eq!((out.requests_ok, out.requests_failed, out.retries), (2, 1, 0));
    assert_eq!((out.samples_acked, out.samples_failed), (20, 10));
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let answers = vec![(StatusCode::BAD_GATEWAY, None); 10];
    let (url, _state) = serve(Script {
        answers,
        ..Script::default()
    })
    .await;
    let opts = Options {
        max_retries: 2,
        ..fast(url)
    };
    let out = replay(queues(1, 1), &opts).await.expect("replay");
    assert_eq!((out.requests_failed, out.retries, out.samples_failed), (1, 2, 10));
    assert_eq!(out.errors_by_status.get("502"), Some(&3));
}

#[tokio::test]
async fn unreachable_receiver_ends_the_run() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let opts = Options {
        max_retries: 1,
        ..fast(format!("http://127.0.0.1:{port}/api/v1/write"))
    };
    let out = replay(queues(2, 2), &opts).await.expect("replay");
    assert_eq!((out.requests_failed, out.samples_acked), (4, 0));
    assert_eq!(out.errors_by_status.get("transport"), Some(&8));
}

#[tokio::test]
async fn deadline_leaves_the_rest_unsent() {
    let (url, _state) = serve(Script::default()).await;
    let opts = Options {
        max_duration: Duration::ZERO,
        ..fast(url)
    };
    let out = replay(queues(2, 5), &opts).await.expect("replay");
    assert_eq!((out.requests, out.samples_unsent), (0, 100));
}
