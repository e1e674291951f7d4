//! The instrumented workloads of one synthetic Kubernetes cluster, as an OpenTelemetry pipeline
//! sees them: deployments (Go and Java HTTP services, Python and Go queue workers, the ingress
//! controller) with their replicas, and the resource attributes the SDKs plus the Collector's
//! `k8sattributes` processor put on their telemetry. Metrics and logs share it, so a pod's logs and
//! metrics carry the same `k8s.*` identity, as they do in a real cluster.

use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};

use crate::workload::cluster_name;
use crate::workload::shape::{Rng, mix};

/// Language runtime of a deployment: decides its runtime metrics and how its logs look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    Go,
    Java,
    Python,
}

/// What a deployment does: decides its application metrics and log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Serves HTTP routes (`http.server.*` metrics, request logs).
    Http,
    /// Consumes a Kafka topic (`messaging.*` metrics, per-message logs).
    Worker,
    /// ingress-nginx: access logs only; its metrics come from Prometheus scrapes, not OTLP.
    Ingress,
}

#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub(crate) namespace: &'static str,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) runtime: Runtime,
    pub(crate) role: Role,
    /// HTTP routes served (empty for workers).
    pub(crate) routes: Vec<&'static str>,
    /// Kafka topic consumed (workers only).
    pub(crate) topic: &'static str,
    /// Java logger / Go package the deployment's code lives in.
    pub(crate) code_namespace: String,
}

/// One pod (one container of interest): one OTLP resource.
#[derive(Debug, Clone)]
pub(crate) struct Pod {
    pub(crate) deployment: usize,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) instance_id: String,
    pub(crate) node: String,
    pub(crate) ip: String,
    pub(crate) container_id: String,
    /// Seeds every draw about this pod (values, log lines).
    pub(crate) seed: u64,
    /// When the pod's SDK exports within each interval: SDKs are not synchronised.
    pub(crate) offset_ms: u64,
    /// How long before the workload's start the process started (cumulative start time).
    pub(crate) age_ms: u64,
    /// Relative log volume (a few pods are far chattier than the rest).
    pub(crate) log_weight: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub(crate) name: String,
    pub(crate) region: &'static str,
    pub(crate) deployments: Vec<Deployment>,
    pub(crate) pods: Vec<Pod>,
}

pub(crate) const REGIONS: &[&str] = &[
    "eu-west-1",
    "us-east-1",
    "ap-southeast-2",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
];
const NAMESPACES: &[&str] = &[
    "payments",
    "checkout",
    "catalog",
    "search",
    "auth",
    "notifications",
    "orders",
    "inventory",
    "recommendations",
    "shipping",
    "analytics",
];
const HTTP_ROLES: &[&str] = &["api", "frontend", "gateway", "web", "graphql"];
const WORKER_ROLES: &[&str] = &["worker", "consumer", "indexer", "scheduler"];
pub(crate) const ROUTES: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/orders/{id}",
    "/api/v1/users/{id}",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/cart/items/{itemId}",
    "/api/v1/checkout",
    "/api/v2/items/{id}/reviews",
    "/api/v1/payments/{paymentId}/capture",
    "/login",
    "/healthz",
    "/readyz",
];
const TOPICS: &[&str] = &[
    "orders.created",
    "payments.authorized",
    "inventory.reserved",
    "emails.outbound",
    "search.reindex",
    "shipments.updated",
];
/// Share of pods per (runtime, role); the rest of the mix follows from replicas.
const KINDS: &[(Runtime, Role, f64)] = &[
    (Runtime::Go, Role::Http, 0.32),
    (Runtime::Java, Role::Http, 0.32),
    (Runtime::Python, Role::Worker, 0.2),
    (Runtime::Go, Role::Worker, 0.1),
    (Runtime::Java, Role::Worker, 0.06),
];

/// Builds cluster `index` with exactly `pods` instrumented pods. The ingress-nginx controller
/// pods are among them only when `with_ingress` (they emit logs, not OTLP metrics).
pub(crate) fn build(seed: u64, index: usize, pods: usize, interval_ms: u64, with_ingress: bool) -> Cluster {
    let mut rng = Rng::new(seed ^ mix(0x07_1b_00 + index as u64));
    let region = REGIONS[index % REGIONS.len()];
    let nodes = (pods / 24).max(1);
    let mut deployments = Vec::new();
    let mut out = Vec::with_capacity(pods);
    if with_ingress && pods > 0 {
        deployments.push(Deployment {
            namespace: "ingress-nginx",
            name: "ingress-nginx-controller".into(),
            version: "1.11.2".into(),
            runtime: Runtime::Go,
            role: Role::Ingress,
            routes: vec![],
            topic: "",
            code_namespace: "k8s.io/ingress-nginx".into(),
        });
        for _ in 0..(pods / 100).clamp(1, 3) {
            let pod = new_pod(&mut rng, &deployments, 0, nodes, index, region, interval_ms);
            out.push(pod);
        }
    }
    while out.len() < pods {
        let d = new_deployment(&mut rng);
        deployments.push(d);
        let replicas = rng.range(1, 6) as usize;
        for _ in 0..replicas.min(pods - out.len()) {
            let pod = new_pod(
                &mut rng,
                &deployments,
                deployments.len() - 1,
                nodes,
                index,
                region,
                interval_ms,
            );
            out.push(pod);
        }
    }
    Cluster {
        name: cluster_name(index),
        region,
        deployments,
        pods: out,
    }
}

fn new_deployment(rng: &mut Rng) -> Deployment {
    let mut u = rng.next_f64();
    let (runtime, role) = KINDS
        .iter()
        .find(|(_, _, share)| {
            u -= share;
            u < 0.0
        })
        .map_or((Runtime::Go, Role::Http), |&(r, k, _)| (r, k));
    let namespace = *rng.pick(NAMESPACES);
    let role_name = *rng.pick(if role == Role::Http { HTTP_ROLES } else { WORKER_ROLES });
    // Teams name deployments both ways: `api` in namespace `payments`, or `payments-api`.
    let name = if rng.chance(0.5) {
        format!("{namespace}-{role_name}")
    } else {
        role_name.to_owned()
    };
    let mut routes = vec![];
    if role == Role::Http {
        let mut pool = ROUTES.to_vec();
        for _ in 0..rng.range(3, 7) {
            routes.push(pool.remove((rng.next_u64() % pool.len() as u64) as usize));
        }
    }
    let code_namespace = match runtime {
        Runtime::Java => format!("com.example.{}.{}", namespace.replace('-', ""), role_name),
        Runtime::Go => format!("github.com/example/{namespace}/internal/{role_name}"),
        Runtime::Python => format!("{}_{}", namespace.replace('-', "_"), role_name),
    };
    let topic = *rng.pick(TOPICS);
    Deployment {
        namespace,
        name,
        version: format!("{}.{}.{}", rng.range(1, 4), rng.range(0, 30), rng.range(0, 12)),
        runtime,
        role,
        routes,
        topic,
        code_namespace,
    }
}

fn new_pod(
    rng: &mut Rng,
    deployments: &[Deployment],
    deployment: usize,
    nodes: usize,
    cluster: usize,
    region: &str,
    interval_ms: u64,
) -> Pod {
    let d = &deployments[deployment];
    let node = rng.range(0, nodes as u64 - 1);
    let node_ip = format!("10.{}.{}.{}", cluster % 256, node / 200, node % 200 + 10);
    let ip = format!("10.{}.{}.{}", 128 + cluster % 128, rng.range(0, 255), rng.range(2, 254));
    // Log volume is heavy-tailed: most pods log a little, a few log a lot.
    let log_weight = (-(1.0 - rng.next_f64()).ln()).powf(1.6) + 0.02;
    Pod {
        deployment,
        name: format!("{}-{}-{}", d.name, rng.k8s_suffix(10), rng.k8s_suffix(5)),
        uid: uuid(rng),
        instance_id: uuid(rng),
        node: format!("ip-{}.{region}.compute.internal", node_ip.replace('.', "-")),
        ip,
        container_id: rng.hex(64),
        seed: rng.next_u64(),
        offset_ms: rng.range(0, interval_ms.max(1) - 1),
        age_ms: rng.range(600_000, 14 * 86_400_000),
        log_weight: if d.role == Role::Ingress {
            log_weight + 8.0
        } else {
            log_weight
        },
    }
}

fn uuid(rng: &mut Rng) -> String {
    let h = rng.hex(32);
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..])
}

pub(crate) fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

pub(crate) fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

pub(crate) fn kv_bool(key: &str, value: bool) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(value)),
        }),
        ..Default::default()
    }
}

impl Cluster {
    /// Resource of an SDK-instrumented pod after the Collector's `k8sattributes` and
    /// `resourcedetection` processors: what the OTel Operator's auto-instrumentation sends.
    pub(crate) fn sdk_resource(&self, pod: &Pod) -> Vec<KeyValue> {
        let d = &self.deployments[pod.deployment];
        let (language, sdk_version, runtime_name, runtime_version) = match d.runtime {
            Runtime::Go => ("go", "1.32.0", "go", "go1.22.7"),
            Runtime::Java => ("java", "1.44.1", "OpenJDK Runtime Environment", "17.0.12+7"),
            Runtime::Python => ("python", "1.27.0", "cpython", "3.11.10"),
        };
        let mut attrs = vec![
            kv("service.name", d.name.as_str()),
            kv("service.namespace", d.namespace),
            kv("service.version", d.version.as_str()),
            kv("service.instance.id", pod.instance_id.as_str()),
            kv("telemetry.sdk.language", language),
            kv("telemetry.sdk.name", "opentelemetry"),
            kv("telemetry.sdk.version", sdk_version),
            kv("process.runtime.name", runtime_name),
            kv("process.runtime.version", runtime_version),
            kv_int("process.pid", 1),
            kv("host.name", pod.name.as_str()),
            kv("os.type", "linux"),
            kv("container.id", pod.container_id.as_str()),
        ];
        if d.runtime == Runtime::Java {
            attrs.push(kv("telemetry.distro.name", "opentelemetry-java-instrumentation"));
            attrs.push(kv("telemetry.distro.version", "2.10.0"));
            attrs.push(kv("host.arch", "amd64"));
        }
        attrs.extend(self.k8s_attributes(pod));
        attrs
    }

    /// Resource of a container log file read by the Collector's `filelog` receiver (container
    /// parser) and enriched by `k8sattributes`.
    pub(crate) fn container_resource(&self, pod: &Pod) -> Vec<KeyValue> {
        let d = &self.deployments[pod.deployment];
        let mut attrs = vec![
            kv("k8s.container.name", container_name(d)),
            kv_int("k8s.container.restart_count", 0),
            kv(
                "container.image.name",
                format!("registry.example.com/{}/{}", d.namespace, d.name),
            ),
            kv("container.image.tag", format!("v{}", d.version)),
            kv("service.name", d.name.as_str()),
        ];
        attrs.extend(self.k8s_attributes(pod));
        attrs
    }

    fn k8s_attributes(&self, pod: &Pod) -> Vec<KeyValue> {
        let d = &self.deployments[pod.deployment];
        vec![
            kv("k8s.cluster.name", self.name.as_str()),
            kv("k8s.namespace.name", d.namespace),
            kv("k8s.deployment.name", d.name.as_str()),
            kv("k8s.pod.name", pod.name.as_str()),
            kv("k8s.pod.uid", pod.uid.as_str()),
            kv("k8s.pod.ip", pod.ip.as_str()),
            kv("k8s.node.name", pod.node.as_str()),
            kv("cloud.provider", "aws"),
            kv("cloud.platform", "aws_eks"),
            kv("cloud.region", self.region),
            kv("deployment.environment.name", "production"),
        ]
    }
}

pub(crate) fn container_name(d: &Deployment) -> &str {
    if d.role == Role::Ingress { "controller" } else { &d.name }
}
