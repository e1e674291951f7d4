//! HTTP services' instrumentation: `otelhttp` for Go services, the Java agent's Tomcat
//! server metrics and, for Java services, their HikariCP connection pool.

use super::histogram::{DEFAULT_BOUNDS, DURATION_BOUNDS, duration, size};
use super::{Builder, Kind, Spec};
use crate::otlp::catalog::{Deployment, Pod, Runtime, kv, kv_int};

impl Builder {
    /// (method, status code, requests per second) of every route × method × status served.
    fn http_mix(&mut self, d: &Deployment) -> Vec<(&'static str, &'static str, i64, f64)> {
        let mut out = vec![];
        for &route in &d.routes {
            let rps = (self.rng.range_f64(-1.5, 2.0) * std::f64::consts::LN_10).exp();
            let mut methods = vec![if route.ends_with("checkout") || route.ends_with("capture") {
                "POST"
            } else {
                "GET"
            }];
            if route.contains('{') && self.rng.chance(0.4) {
                methods.push(*self.rng.pick(&["PUT", "DELETE", "PATCH"]));
            } else if route == "/api/v1/orders" || route == "/api/v1/cart" {
                methods.push("POST");
            }
            for (mi, &method) in methods.iter().enumerate() {
                let share = if mi == 0 { 1.0 } else { 0.2 };
                let ok = if method == "POST" { 201 } else { 200 };
                out.push((route, method, ok, rps * share));
                for &(code, p, err_share) in &[
                    (304, 0.1, 0.05),
                    (400, 0.2, 0.01),
                    (401, 0.1, 0.005),
                    (404, 0.25, 0.02),
                    (500, 0.25, 0.002),
                    (503, 0.05, 0.001),
                ] {
                    if (code != 304 || method == "GET") && self.rng.chance(p) {
                        out.push((route, method, code, rps * share * err_share));
                    }
                }
            }
        }
        out
    }

    /// The server metrics of an HTTP service pod (and its connection pool on Java).
    pub(crate) fn http(&mut self, d: &Deployment, pod: &Pod) {
        let mix = self.http_mix(d);
        let latency = self.rng.range_f64(0.004, 0.15);
        let attrs = |route: &'static str, method: &'static str, code: i64, go: bool| {
            let mut a = vec![
                kv("http.request.method", method),
                kv_int("http.response.status_code", code),
                kv("http.route", route),
                kv("network.protocol.name", "http"),
                kv("network.protocol.version", "1.1"),
                kv("url.scheme", "http"),
            ];
            if go {
                a.push(kv("server.address", pod.ip.as_str()));
                a.push(kv_int("server.port", 8080));
            }
            if code >= 500 {
                a.push(kv("error.type", code.to_string()));
            }
            a
        };
        let go = d.runtime == Runtime::Go;
        let scope = if go {
            self.scope(
                "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                "0.54.0",
            )
        } else {
            self.scope("io.opentelemetry.tomcat-10.0", "2.10.0-alpha")
        };
        let durations = mix
            .iter()
            .map(|&(r, m, c, rps)| {
                let median = if c == 304 || c == 401 || c == 404 {
                    latency * 0.2
                } else {
                    latency
                };
                (attrs(r, m, c, go), Spec::Observe(rps, duration(median)))
            })
            .collect();
        self.metric(
            scope,
            "http.server.request.duration",
            "Duration of HTTP server requests.",
            "s",
            Kind::Histogram(DURATION_BOUNDS),
            false,
            durations,
        );
        if go {
            let requests = mix
                .iter()
                .map(|&(r, m, c, rps)| {
                    let zeros = if m == "GET" || m == "DELETE" { 1.0 } else { 0.05 };
                    (attrs(r, m, c, go), Spec::Observe(rps, size(350.0, zeros)))
                })
                .collect();
            self.metric(
                scope,
                "http.server.request.body.size",
                "Size of HTTP server request bodies.",
                "By",
                Kind::Histogram(DEFAULT_BOUNDS),
                false,
                requests,
            );
            let responses = mix
                .iter()
                .map(|&(r, m, c, rps)| {
                    let median = if c == 200 { 1800.0 } else { 90.0 };
                    (attrs(r, m, c, go), Spec::Observe(rps, size(median, 0.0)))
                })
                .collect();
            self.metric(
                scope,
                "http.server.response.body.size",
                "Size of HTTP server response bodies.",
                "By",
                Kind::Histogram(DEFAULT_BOUNDS),
                false,
                responses,
            );
        } else {
            self.metric(
                scope,
                "http.server.active_requests",
                "Number of active HTTP server requests.",
                "{request}",
                Kind::UpDown,
                true,
                vec![(
                    vec![kv("http.request.method", "GET"), kv("url.scheme", "http")],
                    Spec::Walk {
                        lo: 0.0,
                        hi: 12.0,
                        step: 3.0,
                    },
                )],
            );
            let hikari = self.scope("io.opentelemetry.hikaricp-3.0", "2.10.0-alpha");
            let pool = || kv("pool.name", "HikariPool-1");
            self.metric(
                hikari,
                "db.client.connections.usage",
                "The number of connections that are currently in state described by the state attribute",
                "{connection}",
                Kind::UpDown,
                true,
                vec![
                    (
                        vec![pool(), kv("state", "idle")],
                        Spec::Walk {
                            lo: 2.0,
                            hi: 10.0,
                            step: 2.0,
                        },
                    ),
                    (
                        vec![pool(), kv("state", "used")],
                        Spec::Walk {
                            lo: 0.0,
                            hi: 8.0,
                            step: 2.0,
                        },
                    ),
                ],
            );
            for (name, description, v) in [
                (
                    "db.client.connections.max",
                    "The maximum number of open connections allowed",
                    10.0,
                ),
                (
                    "db.client.connections.idle.min",
                    "The minimum number of idle open connections allowed",
                    10.0,
                ),
                (
                    "db.client.connections.pending_requests",
                    "The number of pending requests for an open connection, cumulative for the entire pool",
                    0.0,
                ),
            ] {
                self.metric(
                    hikari,
                    name,
                    description,
                    "{connection}",
                    Kind::UpDown,
                    true,
                    vec![(vec![pool()], Spec::Constant(v))],
                );
            }
            let queries = mix.iter().map(|m| m.3).sum::<f64>() * 2.0;
            for (name, description, median) in [
                (
                    "db.client.connections.use_time",
                    "The time between borrowing a connection and returning it to the pool",
                    8.0,
                ),
                (
                    "db.client.connections.wait_time",
                    "The time it took to obtain an open connection from the pool",
                    0.3,
                ),
            ] {
                self.metric(
                    hikari,
                    name,
                    description,
                    "ms",
                    Kind::Histogram(DEFAULT_BOUNDS),
                    false,
                    vec![(vec![pool()], Spec::Observe(queries, size(median, 0.0)))],
                );
            }
        }
    }
}
