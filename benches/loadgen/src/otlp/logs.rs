//! OTLP logs as a Kubernetes cluster's Collectors send them: container stdout/stderr read by
//! the `filelog` receiver (Go services' zap JSON lines, Python workers' text lines,
//! ingress-nginx access lines) and Java services' logs through the SDK's logback bridge (plain
//! messages, one scope per logger, trace and span ids on request-scoped records). Bodies are
//! 150–300 bytes; severities are mostly INFO with some DEBUG, WARN and ERROR (access lines carry
//! none, as `filelog` leaves them unparsed).
//!
//! Each pod logs at its own heavy-tailed rate; per tick (a second by default) every pod's
//! records form one export, with timestamps spread over the tick in order.

use tributary_proto::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use tributary_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use tributary_proto::otlp::resource::v1::Resource as OtlpResource;

use super::catalog::{Cluster, Deployment, Pod, Role, Runtime, container_name, kv, kv_int};
use crate::workload::shape::Rng;

/// How a pod's logs reach the Collector, and what they look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// zap production JSON on stderr, via `filelog`.
    GoJson,
    /// Plain `logging` lines on stdout, via `filelog`.
    PythonText,
    /// Combined-format access lines on stdout, via `filelog`.
    Nginx,
    /// logback → OpenTelemetry SDK log bridge.
    JavaSdk,
}

/// One pod's log stream.
#[derive(Debug)]
pub(crate) struct Source {
    attrs: Vec<KeyValue>,
    style: Style,
    /// Records per second.
    rate: f64,
    carry: f64,
    rng: Rng,
    /// Scope names (Java loggers); filelog records have one empty scope.
    scopes: Vec<String>,
    file_path: String,
    deployment: Deployment,
    pod_ip: String,
    pub(crate) collector_key: u64,
}

/// Records of one export: (scope index, record).
pub(crate) type Export = Vec<(u8, LogRecord)>;

/// Every pod of a cluster as a log source, sharing `records_per_second` by their weights.
pub(crate) fn sources(cluster: &Cluster, records_per_second: f64) -> Vec<Source> {
    let total: f64 = cluster.pods.iter().map(|p| p.log_weight).sum();
    cluster
        .pods
        .iter()
        .map(|pod| source(cluster, pod, records_per_second * pod.log_weight / total.max(1e-9)))
        .collect()
}

fn source(cluster: &Cluster, pod: &Pod, rate: f64) -> Source {
    let d = &cluster.deployments[pod.deployment];
    let style = match (d.role, d.runtime) {
        (Role::Ingress, _) => Style::Nginx,
        (_, Runtime::Java) => Style::JavaSdk,
        (_, Runtime::Go) => Style::GoJson,
        (_, Runtime::Python) => Style::PythonText,
    };
    let (attrs, scopes) = if style == Style::JavaSdk {
        let class = if d.role == Role::Http {
            "OrderController"
        } else {
            "EventListener"
        };
        let scopes = [class, "OrderService", "PaymentClient"]
            .iter()
            .map(|c| format!("{}.{c}", d.code_namespace))
            .collect();
        (cluster.sdk_resource(pod), scopes)
    } else {
        (cluster.container_resource(pod), vec![String::new()])
    };
    Source {
        attrs,
        style,
        rate,
        carry: 0.0,
        rng: Rng::new(pod.seed ^ 0x1095),
        scopes,
        file_path: format!(
            "/var/log/pods/{}_{}_{}/{}/0.log",
            d.namespace,
            pod.name,
            pod.uid,
            container_name(d)
        ),
        deployment: d.clone(),
        pod_ip: pod.ip.clone(),
        collector_key: pod.seed.rotate_left(17) ^ 0x1095,
    }
}

impl Source {
    /// This pod's records for the tick starting at `start_ms`, `tick_ms` long, in time order.
    pub(crate) fn tick(&mut self, start_ms: i64, tick_ms: u64) -> Export {
        let expected = self.rate * tick_ms as f64 / 1000.0 * (0.6 + 0.8 * self.rng.next_f64()) + self.carry;
        let n = expected.floor().max(0.0) as usize;
        self.carry = expected - n as f64;
        let mut offsets: Vec<u64> = (0..n).map(|_| self.rng.range(0, tick_ms * 1_000_000 - 1)).collect();
        offsets.sort_unstable();
        let base_ns = start_ms.max(0) as u64 * 1_000_000;
        offsets.into_iter().map(|o| self.record(base_ns + o)).collect()
    }

    fn record(&mut self, time_ns: u64) -> (u8, LogRecord) {
        let severity = match self.rng.next_f64() {
            u if u < 0.82 => Severity::Info,
            u if u < 0.88 => Severity::Debug,
            u if u < 0.96 => Severity::Warn,
            _ => Severity::Error,
        };
        let mut rec = LogRecord {
            time_unix_nano: time_ns,
            ..Default::default()
        };
        let mut scope = 0u8;
        let body = match self.style {
            Style::GoJson => {
                rec.observed_time_unix_nano = time_ns + self.rng.range(20, 900) * 1_000_000;
                rec.attributes = self.file_attributes("stderr");
                self.go_json(severity, time_ns)
            }
            Style::PythonText => {
                rec.observed_time_unix_nano = time_ns + self.rng.range(20, 900) * 1_000_000;
                rec.attributes = self.file_attributes("stdout");
                self.python_text(severity, time_ns)
            }
            Style::Nginx => {
                rec.observed_time_unix_nano = time_ns + self.rng.range(20, 900) * 1_000_000;
                rec.attributes = self.file_attributes("stdout");
                return (0, self.nginx(rec, time_ns));
            }
            Style::JavaSdk => {
                rec.observed_time_unix_nano = time_ns + self.rng.range(0, 2_000_000);
                scope = self.rng.range(0, self.scopes.len() as u64 - 1) as u8;
                let thread = self.rng.range(1, 200);
                rec.attributes = vec![
                    kv("thread.name", format!("http-nio-8080-exec-{thread}")),
                    kv_int("thread.id", 30 + thread as i64),
                ];
                // Request-scoped records carry the active span's context.
                if self.rng.chance(0.7) {
                    rec.trace_id = self
                        .rng
                        .next_u64()
                        .to_be_bytes()
                        .into_iter()
                        .chain(self.rng.next_u64().to_be_bytes())
                        .collect();
                    rec.span_id = self.rng.next_u64().to_be_bytes().to_vec();
                    rec.flags = 1;
                }
                let (body, exception) = self.java(severity);
                if let Some((ty, msg)) = exception {
                    rec.attributes.push(kv("exception.type", ty));
                    rec.attributes.push(kv("exception.message", msg));
                }
                body
            }
        };
        rec.severity_number = severity.number();
        rec.severity_text = severity.text(self.style).into();
        rec.body = Some(string(body));
        (scope, rec)
    }

    fn file_attributes(&self, stream: &str) -> Vec<KeyValue> {
        vec![
            kv("log.iostream", stream),
            kv("log.file.path", self.file_path.as_str()),
            kv("logtag", "F"),
        ]
    }

    fn path(&mut self) -> String {
        let routes = if self.deployment.routes.is_empty() {
            super::catalog::ROUTES
        } else {
            &self.deployment.routes[..]
        };
        let route = *self.rng.pick(routes);
        match route.find('{') {
            Some(i) => {
                let end = route[i..].find('}').map_or(route.len(), |e| i + e + 1);
                format!("{}{}{}", &route[..i], self.rng.range(1000, 999_999), &route[end..])
            }
            None => route.to_owned(),
        }
    }

    fn go_json(&mut self, severity: Severity, time_ns: u64) -> String {
        let ts = format!("{}.{:06}", time_ns / 1_000_000_000, time_ns % 1_000_000_000 / 1000);
        let request_id = uuid(&mut self.rng);
        match severity {
            Severity::Info => {
                let path = self.path();
                format!(
                    r#"{{"level":"info","ts":{ts},"caller":"server/middleware.go:87","msg":"request completed","method":"GET","path":"{path}","status":200,"duration_ms":{:.3},"bytes":{},"request_id":"{request_id}","remote_addr":"10.{}.{}.{}:{}"}}"#,
                    self.rng.range_f64(0.4, 250.0),
                    self.rng.range(80, 40_000),
                    self.rng.range(128, 255),
                    self.rng.range(0, 255),
                    self.rng.range(2, 254),
                    self.rng.range(30_000, 60_999)
                )
            }
            Severity::Debug => format!(
                r#"{{"level":"debug","ts":{ts},"caller":"cache/redis.go:133","msg":"cache miss","key":"{}:{}:summary","ttl_s":300,"pool":"redis-master.{}.svc.cluster.local:6379","request_id":"{request_id}"}}"#,
                self.deployment.namespace,
                self.rng.range(1000, 999_999),
                self.deployment.namespace
            ),
            Severity::Warn => format!(
                r#"{{"level":"warn","ts":{ts},"caller":"client/retry.go:54","msg":"upstream call failed, retrying","upstream":"inventory-api.inventory.svc.cluster.local:8080","attempt":{},"backoff_ms":{},"error":"context deadline exceeded"}}"#,
                self.rng.range(1, 3),
                self.rng.range(50, 800)
            ),
            Severity::Error => format!(
                r#"{{"level":"error","ts":{ts},"caller":"handler/orders.go:211","msg":"failed to load order","order_id":"ord-{}","error":"pq: canceling statement due to statement timeout","request_id":"{request_id}"}}"#,
                self.rng.range(1000, 999_999)
            ),
        }
    }

    fn python_text(&mut self, severity: Severity, time_ns: u64) -> String {
        let (date, time) = civil(time_ns);
        let topic = self.deployment.topic;
        let group = &self.deployment.name;
        let partition = self.rng.range(0, 5);
        let offset = self.rng.range(100_000, 90_000_000);
        let head = format!("{date} {time},{:03}", time_ns / 1_000_000 % 1000);
        match severity {
            Severity::Info => format!(
                "{head} INFO [worker.consumer] processed message topic={topic} partition={partition} offset={offset} key=ord-{} duration_ms={:.1} retries=0 consumer_group={group}",
                self.rng.range(1000, 999_999),
                self.rng.range_f64(0.5, 400.0)
            ),
            Severity::Debug => format!(
                "{head} DEBUG [worker.handlers] fetched {} records from topic={topic} partition={partition} starting at offset={offset} in {:.1}ms (max_poll_records=500)",
                self.rng.range(1, 500),
                self.rng.range_f64(0.5, 40.0)
            ),
            Severity::Warn => format!(
                "{head} WARNING [worker.consumer] slow message handling topic={topic} partition={partition} offset={offset} duration_ms={:.1} threshold_ms=1000 payload_bytes={}",
                self.rng.range_f64(1000.0, 9000.0),
                self.rng.range(200, 60_000)
            ),
            Severity::Error => format!(
                "{head} ERROR [worker.handlers] failed to process message topic={topic} offset={offset}: ConnectionError: HTTPConnectionPool(host='inventory-api.inventory.svc', port=8080): Read timed out. (read timeout=5)"
            ),
        }
    }

    fn nginx(&mut self, mut rec: LogRecord, time_ns: u64) -> LogRecord {
        const AGENTS: &[&str] = &[
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            "okhttp/4.12.0",
            "Go-http-client/1.1",
        ];
        let (date, time) = civil(time_ns);
        let status = match self.rng.next_f64() {
            u if u < 0.9 => 200,
            u if u < 0.93 => 304,
            u if u < 0.97 => 404,
            u if u < 0.99 => 401,
            _ => 502,
        };
        let path = self.path();
        let bytes = self.rng.range(60, 30_000);
        let secs = self.rng.range_f64(0.001, 0.6);
        let agent = *self.rng.pick(AGENTS);
        let body = format!(
            "10.{}.{}.{} - - [{}:{time} +0000] \"GET {path} HTTP/1.1\" {status} {bytes} \"-\" \"{agent}\" {} {secs:.3} [{}-{}-8080] [] {}:8080 {bytes} {secs:.3} {status} {}",
            self.rng.range(0, 255),
            self.rng.range(0, 255),
            self.rng.range(2, 254),
            nginx_date(&date),
            self.rng.range(200, 900),
            self.deployment.namespace,
            self.deployment.name,
            self.pod_ip,
            self.rng.hex(32),
        );
        rec.body = Some(string(body));
        rec
    }

    /// A logback message, and the exception attributes of ERROR records.
    fn java(&mut self, severity: Severity) -> (String, Option<(&'static str, String)>) {
        match severity {
            Severity::Info => {
                let items = self.rng.range(1, 9);
                (
                    format!(
                        "Order ord-{} for customer {} placed: {items} items, total {}.{:02} EUR, payment authorized by provider stripe (auth {}), reservation res-{} confirmed in {} ms",
                        self.rng.range(1000, 999_999),
                        self.rng.range(100, 99_999),
                        self.rng.range(5, 900),
                        self.rng.range(0, 99),
                        self.rng.hex(8),
                        self.rng.range(100, 99_999),
                        self.rng.range(3, 400)
                    ),
                    None,
                )
            }
            Severity::Debug => (
                format!(
                    "Resolved [org.springframework.web.HttpMediaTypeNotAcceptableException: No acceptable representation] for GET {} from {} (Accept: application/xml)",
                    self.path(),
                    self.pod_ip
                ),
                None,
            ),
            Severity::Warn => (
                format!(
                    "HikariPool-1 - Connection org.postgresql.jdbc.PgConnection@{} marked as broken because of SQLSTATE(08006), ErrorCode(0); retrying request {} (attempt {} of 3)",
                    self.rng.hex(8),
                    self.path(),
                    self.rng.range(1, 3)
                ),
                None,
            ),
            Severity::Error => {
                let message = format!(
                    "PreparedStatementCallback; SQL [select * from orders where customer_id = ? limit 50]; ERROR: canceling statement due to statement timeout (customer {})",
                    self.rng.range(100, 99_999)
                );
                (
                    format!("Request processing failed: org.springframework.dao.QueryTimeoutException: {message}"),
                    Some(("org.springframework.dao.QueryTimeoutException", message)),
                )
            }
        }
    }

    /// The `ResourceLogs` of `records`, one `ScopeLogs` per scope in order of first use.
    pub(crate) fn encode(&self, records: Vec<(u8, LogRecord)>) -> ResourceLogs {
        let mut scope_logs: Vec<(u8, ScopeLogs)> = vec![];
        for (scope, rec) in records {
            match scope_logs.iter_mut().find(|(s, _)| *s == scope) {
                Some((_, sl)) => sl.log_records.push(rec),
                None => scope_logs.push((
                    scope,
                    ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: self.scopes.get(scope as usize).cloned().unwrap_or_default(),
                            ..Default::default()
                        }),
                        log_records: vec![rec],
                        schema_url: String::new(),
                    },
                )),
            }
        }
        ResourceLogs {
            resource: Some(OtlpResource {
                attributes: self.attrs.clone(),
                ..Default::default()
            }),
            scope_logs: scope_logs.into_iter().map(|(_, sl)| sl).collect(),
            schema_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Debug,
    Info,
    Warn,
    Error,
}

impl Severity {
    fn number(self) -> i32 {
        match self {
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
        }
    }

    /// As the source spells it.
    fn text(self, style: Style) -> &'static str {
        match (style, self) {
            (Style::Nginx, _) => "",
            (Style::GoJson, Severity::Debug) => "debug",
            (Style::GoJson, Severity::Info) => "info",
            (Style::GoJson, Severity::Warn) => "warn",
            (Style::GoJson, Severity::Error) => "error",
            (Style::PythonText, Severity::Warn) => "WARNING",
            (_, Severity::Debug) => "DEBUG",
            (_, Severity::Info) => "INFO",
            (_, Severity::Warn) => "WARN",
            (_, Severity::Error) => "ERROR",
        }
    }
}

fn string(s: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    }
}

fn uuid(rng: &mut Rng) -> String {
    let h = rng.hex(32);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// (`YYYY-MM-DD`, `HH:MM:SS`) in UTC of a Unix time in ns (Hinnant's civil-from-days).
pub(crate) fn civil(time_ns: u64) -> (String, String) {
    let secs = time_ns / 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60),
    )
}

/// `21/Nov/2026` from `2026-11-21`.
fn nginx_date(date: &str) -> String {
    const MONTHS: &[&str] = &[
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next(), parts.next(), parts.next());
    let month = m
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    format!("{}/{month}/{}", d.unwrap_or("01"), y.unwrap_or("1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_instants() {
        assert_eq!(civil(0), ("1970-01-01".into(), "00:00:00".into()));
        // 2023-11-14T22:13:20Z
        assert_eq!(
            civil(1_700_000_000 * 1_000_000_000),
            ("2023-11-14".into(), "22:13:20".into())
        );
        // 2024-02-29T23:59:59Z (leap day)
        assert_eq!(
            civil(1_709_251_199 * 1_000_000_000),
            ("2024-02-29".into(), "23:59:59".into())
        );
        assert_eq!(nginx_date("2024-02-29"), "29/Feb/2024");
    }
}
