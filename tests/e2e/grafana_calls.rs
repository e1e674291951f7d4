//! Grafana's calls, replayed: the request shapes Grafana's Prometheus and Loki data sources,
//! Explore, Metrics Drilldown and Logs Drilldown send (method, path, parameters, headers), each
//! answered with an asserted status and response shape, against one real server holding a small
//! dataset pushed through remote-write and the Loki push API.
//!
//! Every call names where its shape comes from (repository and file; the parameters are the
//! ones that code sends, with its time formats: seconds for the Prometheus data source,
//! nanoseconds for the Loki data source, RFC 3339 for Logs Drilldown). What the shapes are
//! checked against is what those callers read from the answer.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, post_remote_write, remote_write_body};

/// One replayed request.
struct Call {
    /// Where the shape comes from.
    source: &'static str,
    method: Method,
    path: String,
    params: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    /// What the caller reads from the answer, checked at JSON pointers.
    expect: Vec<(&'static str, Shape)>,
    /// Text the body must hold (for answers that are not JSON).
    text: Option<&'static str>,
}

/// What must be at a JSON pointer of the answer.
enum Shape {
    /// A string equal to this.
    Is(&'static str),
    /// An array holding this string (or an object with this value at `field`).
    Holds(&'static str),
    /// An array of at least one element.
    NonEmpty,
    /// An array (possibly empty).
    Array,
    /// An object.
    Object,
    /// A string.
    Str,
    /// A number.
    Number,
    /// An array of objects, one of which has `field` equal to `value`.
    HasEntry { field: &'static str, value: &'static str },
    /// Nothing at all (a field whose presence changes what the caller does).
    Absent,
}

impl Shape {
    fn check(&self, v: &Value) -> Result<(), String> {
        let ok = match self {
            Shape::Is(s) => v.as_str() == Some(s),
            Shape::Holds(s) => v.as_array().is_some_and(|a| a.iter().any(|e| e.as_str() == Some(s))),
            Shape::NonEmpty => v.as_array().is_some_and(|a| !a.is_empty()),
            Shape::Array => v.is_array(),
            Shape::Object => v.is_object(),
            Shape::Str => v.is_string(),
            Shape::Number => v.is_number(),
            Shape::HasEntry { field, value } => v.as_array().is_some_and(|a| {
                a.iter()
                    .any(|e| e.pointer(field).and_then(Value::as_str) == Some(value))
            }),
            Shape::Absent => false,
        };
        match ok {
            true => Ok(()),
            false => Err(format!(
                "expected {}, found {v}",
                match self {
                    Shape::Is(s) => format!("the string {s:?}"),
                    Shape::Holds(s) => format!("an array holding {s:?}"),
                    Shape::NonEmpty => "a non-empty array".into(),
                    Shape::Array => "an array".into(),
                    Shape::Object => "an object".into(),
                    Shape::Str => "a string".into(),
                    Shape::Number => "a number".into(),
                    Shape::HasEntry { field, value } => format!("an array with an entry whose {field} is {value:?}"),
                    Shape::Absent => "nothing".into(),
                }
            )),
        }
    }
}

fn get(source: &'static str, path: &str, params: Vec<(&'static str, String)>) -> Call {
    Call {
        source,
        method: Method::GET,
        path: path.to_string(),
        params,
        headers: Vec::new(),
        status: 200,
        expect: Vec::new(),
        text: None,
    }
}

impl Call {
    fn post(mut self) -> Self {
        self.method = Method::POST;
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
    fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    fn text(mut self, text: &'static str) -> Self {
        self.text = Some(text);
        self
    }
    fn expect(mut self, pointer: &'static str, shape: Shape) -> Self {
        self.expect.push((pointer, shape));
        self
    }

    async fn run(&self, s: &TestServer) -> Result<(), String> {
        let mut req = s.client().request(self.method.clone(), s.url(&self.path));
        req = match self.method {
            // Grafana's data sources send POST parameters as a form.
            Method::POST => req.form(&self.params),
            _ => req.query(&self.params),
        };
        for (k, v) in &self.headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.map_err(|e| format!("send: {e}"))?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| format!("body: {e}"))?;
        if status != self.status {
            return Err(format!("status {status}, expected {}: {text}", self.status));
        }
        if let Some(want) = self.text.filter(|want| !text.contains(want)) {
            return Err(format!("the body does not say {want:?}: {text}"));
        }
        if self.expect.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
        for (pointer, shape) in &self.expect {
            match (v.pointer(pointer), shape) {
                (None, Shape::Absent) => {}
                (None, _) => return Err(format!("no {pointer} in {v}")),
                (Some(at), shape) => shape.check(at).map_err(|e| format!("at {pointer}: {e}"))?,
            }
        }
        Ok(())
    }
}

const NS: i64 = 1_000_000_000;

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn rfc3339(secs: i64) -> String {
    let (y, m, d, h, mi, sec) = crate::harness::utc_civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{sec:02}.000Z")
}

/// Pushes the dataset: two counters and a classic histogram over the last 10 minutes, and
/// JSON and logfmt log lines of two services.
async fn push(s: &TestServer, now: i64) {
    let ts = |i: i64| (now - 600 + i * 15) * 1000;
    let counter = |rate: f64| (0..40).map(|i| (ts(i), rate * i as f64)).collect::<Vec<_>>();
    let series = vec![
        (
            vec![
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", "a"),
                ("code", "200"),
            ],
            counter(10.0),
        ),
        (
            vec![
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", "a"),
                ("code", "500"),
            ],
            counter(1.0),
        ),
        (
            vec![
                ("__name__", "http_request_duration_seconds_bucket"),
                ("job", "api"),
                ("le", "0.1"),
            ],
            counter(8.0),
        ),
        (
            vec![
                ("__name__", "http_request_duration_seconds_bucket"),
                ("job", "api"),
                ("le", "+Inf"),
            ],
            counter(11.0),
        ),
    ];
    let (status, text) = post_remote_write(
        &s.url("/api/v1/write"),
        remote_write_body(&series),
        &[("X-Tributary-Cluster", "prod-eu")],
    )
    .await;
    assert_eq!(status, 204, "remote write: {text}");

    let t = |i: i64| ((now - 300 + i) * NS).to_string();
    let body = json!({"streams": [
        {"stream": {"app": "checkout", "namespace": "shop"}, "values": [
            [t(1), r#"{"level":"info","path":"/cart","status":200,"duration":"12ms","msg":"served cart 1f3a"}"#],
            [t(2), r#"{"level":"error","path":"/pay","status":503,"duration":"900ms","msg":"served cart 9bc2"}"#],
            [t(3), r#"{"level":"error","path":"/pay","status":500,"duration":"40ms","msg":"served cart 77d0"}"#],
        ]},
        {"stream": {"job": "shop/api", "namespace": "shop"}, "values": [
            [t(4), "level=info method=GET path=/users status=200 duration=120ms"],
            [t(5), "level=warn method=GET path=/orders status=200 duration=3s"],
        ]},
    ]});
    let r = s
        .client()
        .post(s.url("/loki/api/v1/push"))
        .header("X-Tributary-Cluster", "prod-eu")
        .json(&body)
        .send()
        .await
        .expect("loki push");
    let status = r.status().as_u16();
    assert_eq!(status, 204, "loki push: {}", r.text().await.unwrap_or_default());
}

/// The Prometheus data source (grafana/grafana packages/grafana-prometheus/src) and Metrics
/// Drilldown (grafana/metrics-drilldown).
fn prometheus_calls(now: i64) -> Vec<Call> {
    const LP: &str = "grafana/grafana packages/grafana-prometheus/src/language_provider.ts";
    const DS: &str = "grafana/grafana packages/grafana-prometheus/src/datasource.ts";
    const MD: &str = "grafana/metrics-drilldown src/AppDataTrail/MetricDatasourceHelper/MetricDatasourceHelper.ts";
    const AL: &str = "grafana/grafana public/app/features/alerting/unified/api/buildInfo.ts";
    let range = || vec![("start", (now - 3600).to_string()), ("end", now.to_string())];
    let with = |mut p: Vec<(&'static str, String)>, k: &'static str, v: &str| {
        p.push((k, v.to_string()));
        p
    };
    vec![
        get(DS, "/api/v1/status/buildinfo", vec![])
            .expect("/status", Shape::Is("success"))
            .expect("/data/version", Shape::Str),
        // Grafana's alerting probes the data source: buildinfo without Mimir's `features` map
        // reads as Prometheus, whose rules it lists (read-only: no ruler config API) from
        // `/api/v1/rules` (its backend proxies `/api/prometheus/<uid>/api/v1/rules` there).
        get(AL, "/api/v1/status/buildinfo", vec![]).expect("/data/features", Shape::Absent),
        get(AL, "/api/v1/rules", vec![]).expect("/data/groups", Shape::Array),
        get(AL, "/api/v1/alerts", vec![]).expect("/data/alerts", Shape::Array),
        get(MD, "/api/v1/status/buildinfo", vec![]).expect("/data/version", Shape::Str),
        get(LP, "/api/v1/label/__name__/values", range()).expect("/data", Shape::Holds("http_requests_total")),
        get(LP, "/api/v1/labels", with(range(), "match[]", "http_requests_total"))
            .expect("/data", Shape::Holds("cluster")),
        get(LP, "/api/v1/labels", with(range(), "match[]", "http_requests_total"))
            .post()
            .expect("/data", Shape::Holds("code")),
        get(
            LP,
            "/api/v1/label/cluster/values",
            with(range(), "match[]", r#"{__name__="http_requests_total"}"#),
        )
        .expect("/data", Shape::Holds("prod-eu")),
        get(
            LP,
            "/api/v1/series",
            with(with(range(), "match[]", "http_requests_total"), "limit", "40000"),
        )
        .expect(
            "/data",
            Shape::HasEntry {
                field: "/code",
                value: "500",
            },
        ),
        get(LP, "/api/v1/metadata", vec![]).expect("/data", Shape::Object),
        get(MD, "/api/v1/metadata", vec![("metric", "http_requests_total".into())]).expect("/data", Shape::Object),
        get(
            DS,
            "/api/v1/query",
            vec![
                (
                    "query",
                    r#"sum by (code) (rate(http_requests_total{cluster="prod-eu"}[5m]))"#.into(),
                ),
                ("time", now.to_string()),
            ],
        )
        .post()
        .expect("/data/resultType", Shape::Is("vector"))
        .expect(
            "/data/result",
            Shape::HasEntry {
                field: "/metric/code",
                value: "500",
            },
        ),
        get(
            DS,
            "/api/v1/query_range",
            vec![
                (
                    "query",
                    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))".into(),
                ),
                ("start", (now - 600).to_string()),
                ("end", now.to_string()),
                ("step", "15".into()),
            ],
        )
        .post()
        .expect("/data/resultType", Shape::Is("matrix"))
        .expect("/data/result", Shape::NonEmpty),
        get(
            DS,
            "/api/v1/query_exemplars",
            vec![
                ("query", "http_requests_total".into()),
                ("start", (now - 600).to_string()),
                ("end", now.to_string()),
            ],
        )
        .post()
        .expect("/data", Shape::Array),
        get(
            "grafana/grafana packages/grafana-prometheus/src/querybuilder (format query)",
            "/api/v1/format_query",
            vec![("query", "sum(rate(http_requests_total[5m]))by(code)".into())],
        )
        .expect("/data", Shape::Str),
        // Metrics Drilldown's "recent metrics" probe.
        get(
            MD,
            "/api/v1/query",
            vec![(
                "query",
                r#"group by (__name__) ({__name__!=""}) unless (group by (__name__) ({__name__!=""} offset 1h))"#
                    .into(),
            )],
        )
        .expect(
            "/data/result",
            Shape::HasEntry {
                field: "/metric/__name__",
                value: "http_requests_total",
            },
        ),
    ]
}

/// The Loki data source (grafana/grafana public/app/plugins/datasource/loki) and Logs
/// Drilldown (grafana/logs-drilldown src/services/datasource.ts).
fn loki_calls(now: i64) -> Vec<Call> {
    const LP: &str = "grafana/grafana public/app/plugins/datasource/loki/LanguageProvider.ts";
    const DS: &str = "grafana/grafana public/app/plugins/datasource/loki/datasource.ts";
    const LD: &str = "grafana/logs-drilldown src/services/datasource.ts";
    const AL: &str = "grafana/grafana public/app/features/alerting/unified/api/buildInfo.ts";
    let ns = || {
        vec![
            ("start", ((now - 3600) * NS).to_string()),
            ("end", (now * NS).to_string()),
        ]
    };
    let iso = || vec![("start", rfc3339(now - 3600)), ("end", rfc3339(now))];
    let with = |mut p: Vec<(&'static str, String)>, k: &'static str, v: &str| {
        p.push((k, v.to_string()));
        p
    };
    let tag = ("X-Query-Tags", "Source=grafana-lokiexplore-app");
    vec![
        get(DS, "/loki/api/v1/status/buildinfo", vec![]).expect("/version", Shape::Str),
        // Grafana's alerting skips a Loki data source's buildinfo: the Prometheus-shaped rules
        // API must answer (its backend proxies a Loki data source's rules and alerts to
        // `/prometheus/...`), then `/api/prom/rules/test/test` (where its proxy sends Loki ruler
        // calls) probes editing: a plain 404, not Cortex's "group does not exist", means no
        // ruler config API, so the rules are listed read-only.
        get(AL, "/prometheus/api/v1/rules", vec![]).expect("/data/groups", Shape::Array),
        get(AL, "/prometheus/api/v1/alerts", vec![]).expect("/data/alerts", Shape::Array),
        get(AL, "/api/prom/rules/test/test", vec![])
            .status(404)
            .text("no such endpoint"),
        // Probed first: the detected_labels endpoint's presence switches the language provider.
        get(LP, "/loki/api/v1/detected_labels", ns()).expect(
            "/detectedLabels",
            Shape::HasEntry {
                field: "/label",
                value: "service_name",
            },
        ),
        get(LP, "/loki/api/v1/labels", ns())
            .expect("/data", Shape::Holds("service_name"))
            .expect("/data", Shape::Holds("cluster")),
        get(LP, "/loki/api/v1/labels", with(ns(), "query", r#"{cluster="prod-eu"}"#))
            .expect("/data", Shape::Holds("namespace")),
        get(
            LP,
            "/loki/api/v1/label/service_name/values",
            with(ns(), "query", r#"{namespace="shop"}"#),
        )
        .expect("/data", Shape::Holds("checkout"))
        .expect("/data", Shape::Holds("shop/api")),
        get(
            LP,
            "/loki/api/v1/series",
            with(ns(), "match[]", r#"{namespace="shop"}"#),
        )
        .expect(
            "/data",
            Shape::HasEntry {
                field: "/service_name",
                value: "checkout",
            },
        ),
        get(
            LP,
            "/loki/api/v1/detected_fields",
            with(with(ns(), "limit", "1000"), "query", r#"{service_name="checkout"}"#),
        )
        .expect(
            "/fields",
            Shape::HasEntry {
                field: "/label",
                value: "status",
            },
        ),
        get(
            LP,
            "/loki/api/v1/detected_field/path/values",
            with(with(ns(), "limit", "1000"), "query", r#"{service_name="checkout"}"#),
        )
        .expect("/values", Shape::Holds("/pay")),
        get(
            DS,
            "/loki/api/v1/index/stats",
            with(ns(), "query", r#"{namespace="shop"}"#),
        )
        .expect("/streams", Shape::Number),
        // Explore's log query, asking for structured metadata and parsed labels apart.
        get(
            DS,
            "/loki/api/v1/query_range",
            with(
                with(
                    with(ns(), "query", r#"{service_name="checkout"} | json"#),
                    "limit",
                    "1000",
                ),
                "direction",
                "backward",
            ),
        )
        .header("X-Loki-Response-Encoding-Flags", "categorize-labels")
        .header("X-Query-Tags", "Source=grafana")
        .expect("/data/resultType", Shape::Is("streams"))
        .expect("/data/encodingFlags", Shape::Holds("categorize-labels"))
        .expect(
            "/data/result",
            Shape::HasEntry {
                field: "/stream/service_name",
                value: "checkout",
            },
        ),
        // Logs Drilldown: the service list, the level breakdown, patterns, labels and fields.
        get(
            LD,
            "/loki/api/v1/index/volume",
            with(with(iso(), "limit", "5000"), "query", r#"{service_name=~".+"}"#),
        )
        .header(tag.0, tag.1)
        .expect("/data/resultType", Shape::Is("vector"))
        .expect(
            "/data/result",
            Shape::HasEntry {
                field: "/metric/service_name",
                value: "checkout",
            },
        ),
        get(
            "grafana/grafana public/app/plugins/datasource/loki (logs volume, index/volume_range)",
            "/loki/api/v1/index/volume_range",
            with(
                // The lines lie seconds apart: a 1 s step puts them in several buckets.
                with(with(ns(), "query", r#"{namespace="shop"}"#), "step", "1"),
                "targetLabels",
                "service_name",
            ),
        )
        .expect("/data/resultType", Shape::Is("matrix"))
        .expect("/data/result", Shape::NonEmpty),
        get(
            LD,
            "/loki/api/v1/query_range",
            with(
                with(
                    ns(),
                    "query",
                    r#"sum by (detected_level) (count_over_time({service_name="checkout"} | drop __error__ [1m]))"#,
                ),
                "step",
                "60",
            ),
        )
        .header(tag.0, tag.1)
        .expect("/data/resultType", Shape::Is("matrix"))
        .expect(
            "/data/result",
            Shape::HasEntry {
                field: "/metric/detected_level",
                value: "error",
            },
        ),
        get(
            LD,
            "/loki/api/v1/patterns",
            with(with(iso(), "step", "15s"), "query", r#"{service_name="checkout"}"#),
        )
        .header(tag.0, tag.1)
        .expect("/status", Shape::Is("success"))
        .expect("/data", Shape::NonEmpty),
        get(
            LD,
            "/loki/api/v1/detected_labels",
            with(iso(), "query", r#"{service_name="checkout"}"#),
        )
        .header(tag.0, tag.1)
        .expect("/detectedLabels", Shape::Array),
        get(
            LD,
            "/loki/api/v1/detected_fields",
            with(iso(), "query", r#"{service_name="checkout"}"#),
        )
        .header(tag.0, tag.1)
        .expect(
            "/fields",
            Shape::HasEntry {
                field: "/label",
                value: "path",
            },
        ),
        get(LD, "/loki/api/v1/labels", iso())
            .header(tag.0, tag.1)
            .expect("/data", Shape::Holds("service_name")),
        // Optional in Logs Drilldown (Loki 3.5's limits endpoint; the app falls back to its
        // defaults when it is missing): a 404 naming the path, in Loki's plain-text error shape.
        get(LD, "/loki/api/v1/drilldown-limits", vec![])
            .header(tag.0, tag.1)
            .status(404)
            .text("/loki/api/v1/drilldown-limits"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_data_sources_and_drilldown_apps_get_the_answers_they_read() {
    let s = TestServer::start().await;
    let now = now_s();
    push(&s, now).await;
    let mut failures = Vec::new();
    let calls: Vec<Call> = prometheus_calls(now).into_iter().chain(loki_calls(now)).collect();
    for call in &calls {
        if let Err(e) = call.run(&s).await {
            failures.push(format!(
                "{} {} {:?} (from {}): {e}",
                call.method, call.path, call.params, call.source
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} Grafana calls failed:\n{}",
        failures.len(),
        calls.len(),
        failures.join("\n")
    );
}

/// `deploy/grafana/datasource.yml` provisions the four data sources at the HTTP port (Jaeger's
/// under `/jaeger`), every link between them names a data source it provisions, and the
/// Prometheus version it names is the one `/api/v1/status/buildinfo` answers (Grafana gates
/// features on it), so the two cannot drift apart.
#[tokio::test]
async fn grafana_provisioning_names_every_data_source_at_the_served_versions() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/datasource.yml"))
        .expect("deploy/grafana/datasource.yml");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("datasource.yml is YAML");
    let sources = doc["datasources"].as_sequence().expect("datasources");
    let uids: Vec<&str> = sources.iter().filter_map(|d| d["uid"].as_str()).collect();
    let types: Vec<&str> = sources.iter().filter_map(|d| d["type"].as_str()).collect();
    assert_eq!(types, ["prometheus", "loki", "tempo", "jaeger"], "{text}");
    for d in sources {
        let url = d["url"].as_str().unwrap();
        let want = if d["type"] == "jaeger" {
            "http://tributary.example:9201/jaeger"
        } else {
            "http://tributary.example:9201"
        };
        assert_eq!(url, want);
    }
    // Every datasourceUid a link names is one of the provisioned data sources.
    let linked: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("datasourceUid: "))
        .collect();
    assert!(linked.len() >= 6, "{linked:?}");
    for uid in linked {
        assert!(uids.contains(&uid), "{uid} is not provisioned");
    }
    let s = TestServer::start().await;
    let get = |path: &'static str| {
        let url = s.url(path);
        async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap() }
    };
    let prom = get("/api/v1/status/buildinfo").await;
    let version = prom["data"]["version"].as_str().expect("version");
    assert!(
        text.contains(&format!("prometheusVersion: {version}")),
        "buildinfo says {version}: {text}"
    );
    let tempo = get("/api/status/buildinfo").await;
    assert!(tempo["version"].as_str().is_some_and(|v| v.starts_with('2')), "{tempo}");
    let loki = get("/loki/api/v1/status/buildinfo").await;
    assert!(loki["version"].as_str().is_some_and(|v| v.starts_with('3')), "{loki}");
}
