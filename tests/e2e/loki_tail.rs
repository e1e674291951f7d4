//! `/loki/api/v1/tail` over a real websocket: lines already stored since `start` arrive first,
//! then lines pushed while the tail is open (through the Loki push API) arrive within seconds,
//! filtered by the query's pipeline, each exactly once. Bad tails are refused with Loki's 400
//! before any upgrade.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{TestServer, urlencode};

const SEC: i64 = 1_000_000_000;

pub(crate) fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

pub(crate) async fn push(s: &TestServer, ts: i64, service: &str, line: &str) {
    let body = json!({"streams": [{"stream": {"cluster": "tail-1", "service_name": service},
        "values": [[ts.to_string(), line]]}]});
    let r = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .json(&body)
        .send()
        .await
        .expect("push");
    assert_eq!(r.status().as_u16(), 204, "push: {}", r.text().await.unwrap_or_default());
}

/// Reads tail messages until `want` lines arrived (or 20 s passed); returns (ns, service, line).
pub(crate) async fn read_lines<S>(ws: &mut S, want: usize) -> Vec<(i64, String, String)>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < want {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {want} tailed lines within 20 s: {got:?}", got.len()))
            .expect("socket open")
            .expect("websocket message");
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).expect("tail message is JSON");
        assert!(v["dropped_entries"].is_null(), "{v}");
        for stream in v["streams"].as_array().expect("streams") {
            assert_eq!(stream["stream"]["cluster"], "tail-1", "{v}");
            let service = stream["stream"]["service_name"].as_str().expect("service").to_string();
            for pair in stream["values"].as_array().expect("values") {
                let ts: i64 = pair[0].as_str().expect("ns string").parse().expect("ns");
                got.push((ts, service.clone(), pair[1].as_str().expect("line").to_string()));
            }
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn loki_tail_streams_stored_then_new_lines_through_a_websocket() {
    let s = TestServer::start().await;
    let t0 = now_ns();
    push(&s, t0 - 10 * SEC, "checkout", "before: request timeout").await;
    push(&s, t0 - 9 * SEC, "checkout", "before: ok").await;
    push(&s, t0 - 8 * SEC, "cart", "before: cart timeout").await;

    let query = r#"{cluster="tail-1", service_name=~"checkout|cart"} |= "timeout""#;
    let url = format!(
        "ws://127.0.0.1:{}/loki/api/v1/tail?query={}&start={}&limit=50",
        s.port,
        urlencode(query),
        t0 - 60 * SEC
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket upgrade");

    let mut first = read_lines(&mut ws, 2).await;
    first.sort();
    assert_eq!(
        first,
        vec![
            (t0 - 10 * SEC, "checkout".into(), "before: request timeout".into()),
            (t0 - 8 * SEC, "cart".into(), "before: cart timeout".into()),
        ]
    );

    // Lines pushed while the tail is open, stamped "now" as a shipper would.
    let mut sent = Vec::new();
    for i in 0..3 {
        let ts = now_ns();
        push(&s, ts, "checkout", &format!("live {i}: upstream timeout")).await;
        push(&s, ts + 1, "checkout", &format!("live {i}: fine")).await;
        sent.push((ts, "checkout".to_string(), format!("live {i}: upstream timeout")));
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let mut live = read_lines(&mut ws, 3).await;
    live.sort();
    assert_eq!(
        live, sent,
        "each matching live line exactly once, non-matching ones filtered"
    );

    // Nothing more arrives (no duplicates) within a few polls.
    let extra = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Some(t.to_string()),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await;
    assert!(extra.is_err(), "unexpected extra tail message: {extra:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn loki_tail_refuses_bad_requests_with_lokis_400() {
    let s = TestServer::start().await;
    for (params, want) in [
        ("query=sum(rate({cluster=\"a\"}[1m]))", "tail only supports log queries"),
        ("query={cluster=\"a\"}&delay_for=9", "delay_for"),
        ("query={cluster=", "parse error"),
    ] {
        let r = reqwest::get(s.url(&format!("/loki/api/v1/tail?{}", params.replace('"', "%22"))))
            .await
            .expect("tail request");
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert_eq!(status, 400, "{params}: {body}");
        assert!(body.contains(want), "{params}: {body}");
    }
    // A valid query without a websocket upgrade says what is missing.
    let r = reqwest::get(s.url("/loki/api/v1/tail?query=%7Bcluster%3D%22a%22%7D"))
        .await
        .expect("tail request");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap_or_default().contains("websocket"));
}
