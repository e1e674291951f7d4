//! OTLP traces as a Kubernetes cluster's Collectors send them: every instrumented pod's SDK
//! records a trace per request it handles — a server span (HTTP services: method, route,
//! status code, URL path, client address; queue workers: a consumer span with the messaging
//! attributes), with 2–5 children (database calls with `db.*` attributes, outgoing HTTP calls
//! with `peer.service`, internal steps), about 1 in 50 failing with an error status and an
//! exception event. Spans are 250–450 bytes of protobuf each.
//!
//! Each pod handles requests at its own heavy-tailed rate (the log weights of the catalog);
//! per tick every pod's spans form one export, as the SDK's batch span processor sends them.

use tributary_proto::otlp::common::v1::{InstrumentationScope, KeyValue};
use tributary_proto::otlp::resource::v1::Resource as OtlpResource;
use tributary_proto::otlp::trace::v1::span::Event;
use tributary_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::catalog::{Cluster, Deployment, Pod, Role, kv, kv_int};
use crate::workload::shape::Rng;

/// One pod's span stream.
#[derive(Debug)]
pub(crate) struct Source {
    attrs: Vec<KeyValue>,
    /// Spans per second.
    rate: f64,
    carry: f64,
    rng: Rng,
    deployment: Deployment,
    pub(crate) collector_key: u64,
}

/// Every pod of a cluster as a span source, sharing `spans_per_second` by their weights
/// (ingress pods send no spans: the controller is not instrumented).
pub(crate) fn sources(cluster: &Cluster, spans_per_second: f64) -> Vec<Source> {
    let pods: Vec<&Pod> = cluster
        .pods
        .iter()
        .filter(|p| cluster.deployments[p.deployment].role != Role::Ingress)
        .collect();
    let total: f64 = pods.iter().map(|p| p.log_weight).sum();
    pods.into_iter()
        .map(|pod| Source {
            attrs: cluster.sdk_resource(pod),
            rate: spans_per_second * pod.log_weight / total.max(1e-9),
            carry: 0.0,
            rng: Rng::new(pod.seed ^ 0x7ace),
            deployment: cluster.deployments[pod.deployment].clone(),
            collector_key: pod.seed.rotate_left(23) ^ 0x7ace,
        })
        .collect()
}

impl Source {
    /// This pod's spans for the tick starting at `start_ms`, `tick_ms` long: whole traces,
    /// about `rate × tick` spans.
    pub(crate) fn tick(&mut self, start_ms: i64, tick_ms: u64) -> Vec<Span> {
        let expected = self.rate * tick_ms as f64 / 1000.0 * (0.6 + 0.8 * self.rng.next_f64()) + self.carry;
        let base_ns = start_ms.max(0) as u64 * 1_000_000;
        let mut spans = Vec::with_capacity(expected as usize + 6);
        while (spans.len() as f64) < expected.floor() {
            let at = base_ns + self.rng.range(0, tick_ms * 1_000_000 - 1);
            self.trace(at, &mut spans);
        }
        self.carry = expected - spans.len() as f64;
        spans
    }

    fn id16(&mut self) -> Vec<u8> {
        let mut id = self.rng.next_u64().to_be_bytes().to_vec();
        id.extend(self.rng.next_u64().to_be_bytes());
        id
    }

    fn trace(&mut self, start_ns: u64, out: &mut Vec<Span>) {
        let trace_id = self.id16();
        let root_id = self.rng.next_u64().to_be_bytes().to_vec();
        let failed = self.rng.chance(0.02);
        let children = self.rng.range(2, 5);
        let mut at = start_ns + self.rng.range(50_000, 400_000);
        let mut child_spans = Vec::with_capacity(children as usize);
        for i in 0..children {
            let duration = self.rng.range(300_000, 40_000_000);
            let mut span = Span {
                trace_id: trace_id.clone(),
                span_id: self.rng.next_u64().to_be_bytes().to_vec(),
                parent_span_id: root_id.clone(),
                flags: 0x101,
                start_time_unix_nano: at,
                end_time_unix_nano: at + duration,
                ..Span::default()
            };
            match i % 3 {
                0 => {
                    span.name = "SELECT orders".into();
                    span.kind = 3;
                    span.attributes = vec![
                        kv("db.system", "postgresql"),
                        kv("db.namespace", self.deployment.namespace),
                        kv(
                            "db.query.text",
                            "SELECT id, status, total FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 20",
                        ),
                        kv("server.address", "postgres.db.svc.cluster.local"),
                        kv_int("server.port", 5432),
                    ];
                }
                1 => {
                    span.name = "GET".into();
                    span.kind = 3;
                    let status = if failed && i == children - 1 { 503 } else { 200 };
                    span.attributes = vec![
                        kv("http.request.method", "GET"),
                        kv("url.full", "http://inventory-api.inventory.svc:8080/api/v1/stock"),
                        kv("peer.service", "inventory-api"),
                        kv_int("http.response.status_code", status),
                    ];
                }
                _ => {
                    span.name = "render response".into();
                    span.kind = 1;
                }
            }
            at += duration + self.rng.range(10_000, 200_000);
            child_spans.push(span);
        }
        let (name, kind, attributes) = match self.deployment.role {
            Role::Worker => (
                format!("{} process", self.deployment.topic),
                5,
                vec![
                    kv("messaging.system", "kafka"),
                    kv("messaging.destination.name", self.deployment.topic),
                    kv("messaging.consumer.group.name", self.deployment.name.as_str()),
                    kv_int("messaging.kafka.offset", self.rng.range(100_000, 90_000_000) as i64),
                ],
            ),
            _ => {
                let route = *self.rng.pick(if self.deployment.routes.is_empty() {
                    super::catalog::ROUTES
                } else {
                    &self.deployment.routes[..]
                });
                let status = if failed { 500 } else { 200 };
                (
                    format!("GET {route}"),
                    2,
                    vec![
                        kv("http.request.method", "GET"),
                        kv("http.route", route),
                        kv(
                            "url.path",
                            route.replace("{id}", &self.rng.range(1000, 999_999).to_string()),
                        ),
                        kv("url.scheme", "http"),
                        kv_int("http.response.status_code", status),
                        kv(
                            "client.address",
                            format!(
                                "10.{}.{}.{}",
                                self.rng.range(0, 255),
                                self.rng.range(0, 255),
                                self.rng.range(2, 254)
                            ),
                        ),
                        kv("network.protocol.version", "1.1"),
                        kv("user_agent.original", "okhttp/4.12.0"),
                    ],
                )
            }
        };
        let end = at + self.rng.range(50_000, 300_000);
        let mut root = Span {
            trace_id,
            span_id: root_id,
            flags: 0x301,
            name,
            kind,
            start_time_unix_nano: start_ns,
            end_time_unix_nano: end,
            attributes,
            ..Span::default()
        };
        if failed {
            root.status = Some(Status {
                code: 2,
                message: "upstream inventory-api returned 503".into(),
            });
            root.events.push(Event {
                time_unix_nano: end - 10_000,
                name: "exception".into(),
                attributes: vec![
                    kv("exception.type", "java.io.IOException"),
                    kv(
                        "exception.message",
                        "upstream inventory-api returned 503 Service Unavailable",
                    ),
                ],
                ..Event::default()
            });
        }
        out.push(root);
        out.extend(child_spans);
    }

    /// One resource's spans, one scope (the SDK's instrumentation library).
    pub(crate) fn encode(&self, spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            resource: Some(OtlpResource {
                attributes: self.attrs.clone(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: format!("{}.instrumentation", self.deployment.code_namespace),
                    version: "2.10.0".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }
    }
}
