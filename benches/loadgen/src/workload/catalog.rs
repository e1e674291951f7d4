//! The series of one synthetic Kubernetes cluster, shaped like what kube-prometheus-stack
//! scrapes: node-exporter per node, cAdvisor (kubelet) per container, kube-state-metrics per
//! pod, and instrumented applications (Go runtime + `http_requests_total` +
//! `http_request_duration_seconds` histograms), each target with Prometheus' synthetic
//! `up`/`scrape_*` series. Label names and value lengths follow the real exporters.

use tributary_proto::prometheus::Label;

use super::shape::{Evolution, Grain, Rng, Shape, mix};

/// One generated series: its sorted labels, value model and the target's scrape offset.
#[derive(Debug, Clone)]
pub(crate) struct CatalogSeries {
    pub(crate) labels: Vec<Label>,
    pub(crate) evolution: Evolution,
    /// Offset of the target's scrape within the interval; targets are not scraped in lockstep.
    pub(crate) offset_ms: u64,
}

const REGIONS: &[&str] = &[
    "eu-west-1",
    "us-east-1",
    "ap-southeast-2",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
];
const ENVIRONMENTS: &[&str] = &["prod", "prod", "staging", "prod", "dev"];
const APP_NAMESPACES: &[&str] = &[
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
    "ingress-nginx",
];
const ROLES: &[&str] = &[
    "api",
    "worker",
    "frontend",
    "gateway",
    "consumer",
    "scheduler",
    "indexer",
    "web",
];
const HTTP_ROLES: &[&str] = &["api", "frontend", "gateway", "web"];
const HANDLERS: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/orders/{id}",
    "/api/v1/users/{id}",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/checkout",
    "/api/v2/items/{id}/reviews",
    "/login",
    "/healthz",
    "/metrics",
    "/static/*filepath",
];
const ERROR_CODES: &[&str] = &["400", "401", "403", "404", "409", "429", "500", "502", "503", "504"];
const BUCKETS: &[&str] = &[
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const CPU_MODES: &[(&str, f64)] = &[
    ("idle", 0.55),
    ("iowait", 0.01),
    ("irq", 0.0),
    ("nice", 0.0),
    ("softirq", 0.004),
    ("steal", 0.0),
    ("system", 0.06),
    ("user", 0.25),
];
const FILESYSTEMS: &[(&str, &str, &str)] = &[
    ("/dev/nvme0n1p1", "xfs", "/"),
    ("/dev/nvme1n1", "ext4", "/var/lib/kubelet"),
    ("tmpfs", "tmpfs", "/run"),
];
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Name of the `index`-th synthetic cluster, e.g. `prod-eu-west-1`.
pub fn cluster_name(index: usize) -> String {
    let env = ENVIRONMENTS[index % ENVIRONMENTS.len()];
    let region = REGIONS[index % REGIONS.len()];
    let round = index / (ENVIRONMENTS.len() * REGIONS.len());
    if round == 0 {
        format!("{env}-{region}")
    } else {
        format!("{env}-{region}-{round}")
    }
}

struct Deployment {
    namespace: &'static str,
    name: String,
    image: String,
    http_handlers: Vec<&'static str>,
    sidecar: bool,
    cores: f64,
}

struct Target {
    seed: u64,
    offset_ms: u64,
    labels: Vec<(&'static str, String)>,
}

struct Pod {
    namespace: String,
    name: String,
    uid: String,
    ip: String,
    /// (container name, image, container id)
    containers: Vec<(String, String, String)>,
}

/// Builds exactly `limit` series for cluster `index` (fewer only if `limit` is 0).
pub(crate) fn build(seed: u64, index: usize, limit: usize, interval_ms: u64) -> Vec<CatalogSeries> {
    let mut b = Builder {
        cluster: cluster_name(index),
        cluster_index: index,
        rng: Rng::new(seed ^ mix(index as u64 + 1)),
        out: Vec::with_capacity(limit),
        limit,
        interval_ms: interval_ms.max(1),
        targets: 0,
    };
    let deployments = b.deployments();
    let ksm_ip = format!("10.{}.100.{}", index % 256, b.rng.range(2, 250));
    let ksm = b.target(vec![
        ("instance", format!("{ksm_ip}:8080")),
        ("job", "kube-state-metrics".into()),
    ]);
    b.scrape_meta(&ksm);
    let mut node = 0;
    while !b.full() {
        b.node(node, &deployments, &ksm);
        node += 1;
    }
    b.out
}

struct Builder {
    cluster: String,
    cluster_index: usize,
    rng: Rng,
    out: Vec<CatalogSeries>,
    limit: usize,
    interval_ms: u64,
    targets: u64,
}

impl Builder {
    fn full(&self) -> bool {
        self.out.len() >= self.limit
    }

    fn interval_s(&self) -> f64 {
        self.interval_ms as f64 / 1000.0
    }

    fn target(&mut self, labels: Vec<(&'static str, String)>) -> Target {
        self.targets += 1;
        Target {
            seed: mix(self.rng.next_u64() ^ self.targets),
            offset_ms: self.rng.range(0, self.interval_ms - 1),
            labels,
        }
    }

    fn series(&mut self, target: &Target, name: &str, extra: &[(&'static str, &str)], shape: Shape) {
        let group = self.rng.next_u64();
        self.series_in_group(target, name, extra, shape, group);
    }

    fn series_in_group(
        &mut self,
        target: &Target,
        name: &str,
        extra: &[(&'static str, &str)],
        shape: Shape,
        group: u64,
    ) {
        if self.full() {
            return;
        }
        let labels = self.labels_of(target, name, extra);
        debug_assert!(
            labels.windows(2).all(|w| w[0].name != w[1].name),
            "duplicate label in {labels:?}"
        );
        let own = self.rng.next_u64();
        self.out.push(CatalogSeries {
            labels,
            evolution: Evolution::new(shape, own, group, target.seed),
            offset_ms: target.offset_ms,
        });
    }

    /// The series Prometheus itself adds for every target.
    fn scrape_meta(&mut self, t: &Target) {
        let scraped = self.rng.range(80, 4000) as f64;
        self.series(t, "up", &[], Shape::Constant(1.0));
        let typical = self.rng.range_f64(0.003, 0.4);
        let duration = Shape::Gauge {
            step: typical * 0.2,
            min: typical * 0.5,
            max: typical * 2.0,
            grain: Grain::Exact,
        };
        self.series(t, "scrape_duration_seconds", &[], duration);
        self.series(t, "scrape_samples_scraped", &[], Shape::Constant(scraped));
        self.series(
            t,
            "scrape_samples_post_metric_relabeling",
            &[],
            Shape::Constant(scraped),
        );
        self.series(t, "scrape_series_added", &[], Shape::Constant(0.0));
    }

    fn counter(&self, per_second: f64, jitter: f64, grain: Grain) -> Shape {
        Shape::Counter {
            rate: per_second * self.interval_s(),
            jitter,
            grain,
        }
    }

    fn deployments(&mut self) -> Vec<Deployment> {
        let mut out = vec![];
        for (name, cores) in [("coredns", 0.05), ("metrics-server", 0.02)] {
            let image = format!(
                "registry.k8s.io/{name}:v1.{}.{}",
                self.rng.range(8, 11),
                self.rng.range(0, 9)
            );
            out.push(Deployment {
                namespace: "kube-system",
                name: name.into(),
                image,
                http_handlers: vec![],
                sidecar: false,
                cores,
            });
        }
        for &namespace in APP_NAMESPACES {
            let sidecar = self.rng.chance(0.3);
            let mut roles: Vec<&'static str> = ROLES.to_vec();
            for _ in 0..self.rng.range(2, 4) {
                let role = roles.remove((self.rng.next_u64() % roles.len() as u64) as usize);
                // Teams name deployments both ways: `api` in namespace `payments`, or `payments-api`.
                let name = if self.rng.chance(0.5) {
                    role.to_owned()
                } else {
                    format!("{namespace}-{role}")
                };
                let image = format!(
                    "registry.example.com/{namespace}/{name}:v{}.{}.{}",
                    self.rng.range(1, 4),
                    self.rng.range(0, 30),
                    self.rng.range(0, 12)
                );
                let mut http_handlers = vec![];
                if HTTP_ROLES.contains(&role) {
                    let mut pool: Vec<&'static str> = HANDLERS.to_vec();
                    for _ in 0..self.rng.range(2, 5) {
                        http_handlers.push(pool.remove((self.rng.next_u64() % pool.len() as u64) as usize));
                    }
                }
                let cores = self.rng.range_f64(0.01, 0.8);
                out.push(Deployment {
                    namespace,
                    name,
                    image,
                    http_handlers,
                    sidecar,
                    cores,
                });
            }
        }
        out
    }

    fn node(&mut self, n: usize, deployments: &[Deployment], ksm: &Target) {
        let c = self.cluster_index % 256;
        let ip = format!("10.{c}.{}.{}", n / 200, n % 200 + 10);
        let region = REGIONS[self.cluster_index % REGIONS.len()];
        let node_name = format!("ip-{}.{region}.compute.internal", ip.replace('.', "-"));
        let exporter_pod = format!("node-exporter-{}", self.rng.k8s_suffix(5));
        let exporter = self.target(vec![
            ("instance", format!("{ip}:9100")),
            ("job", "node-exporter".into()),
            ("namespace", "monitoring".into()),
            ("pod", exporter_pod.clone()),
        ]);
        self.node_exporter(&exporter);

        let kubelet = self.target(vec![
            ("instance", format!("{ip}:10250")),
            ("job", "kubelet".into()),
            ("metrics_path", "/metrics/cadvisor".into()),
            ("node", node_name.clone()),
            ("service", "kubelet".into()),
        ]);
        self.scrape_meta(&kubelet);

        let mut pods = vec![
            self.pod(
                "monitoring",
                exporter_pod,
                &[("node-exporter", "quay.io/prometheus/node-exporter:v1.5.0")],
                n,
                0,
            ),
            self.daemon_pod("kube-system", "kube-proxy", "registry.k8s.io/kube-proxy:v1.27.4", n, 1),
            self.daemon_pod("kube-system", "calico-node", "docker.io/calico/node:v3.26.1", n, 2),
        ];
        let count = self.rng.range(18, 36) as usize;
        let mut apps = vec![];
        for k in 3..count {
            let d = self.rng.pick(deployments);
            let name = format!("{}-{}-{}", d.name, self.rng.k8s_suffix(10), self.rng.k8s_suffix(5));
            let mut containers = vec![(d.name.as_str(), d.image.as_str())];
            if d.sidecar {
                containers.push(("istio-proxy", "docker.io/istio/proxyv2:1.18.2"));
            }
            pods.push(self.pod(d.namespace, name, &containers, n, k));
            apps.push(d);
        }
        for (i, pod) in pods.iter().enumerate() {
            let cores = if i < 3 { 0.02 } else { apps[i - 3].cores };
            self.cadvisor(&kubelet, pod, cores);
            self.kube_state(ksm, pod, &ip, &node_name);
            if i >= 3 {
                self.application(pod, apps[i - 3]);
            }
            if self.full() {
                return;
            }
        }
    }

    fn daemon_pod(&mut self, namespace: &str, name: &str, image: &str, node: usize, k: usize) -> Pod {
        let pod = format!("{name}-{}", self.rng.k8s_suffix(5));
        self.pod(namespace, pod, &[(name, image)], node, k)
    }

    fn pod(&mut self, namespace: &str, name: String, containers: &[(&str, &str)], node: usize, k: usize) -> Pod {
        let uid = format!(
            "{}-{}-{}-{}-{}",
            self.rng.hex(8),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(12)
        );
        let ip = format!("10.{}.{}.{}", 128 + (self.cluster_index % 128), node % 256, k + 2);
        let containers = containers
            .iter()
            .map(|(c, i)| (c.to_string(), i.to_string(), self.rng.hex(64)))
            .collect();
        Pod {
            namespace: namespace.into(),
            name,
            uid,
            ip,
            containers,
        }
    }

    fn node_exporter(&mut self, t: &Target) {
        self.scrape_meta(t);
        let cpus = *self.rng.pick(&[2u64, 4, 4, 8, 8, 16]);
        let busy = self.rng.range_f64(0.3, 1.6);
        for cpu in 0..cpus {
            let cpu = cpu.to_string();
            for &(mode, share) in CPU_MODES {
                let shape = if share == 0.0 {
                    Shape::Constant((self.rng.range(0, 90_000) as f64) / 100.0)
                } else {
                    let s = if mode == "idle" { share } else { share * busy };
                    self.counter(s, 0.6, Grain::Decimals(2))
                };
                self.series(t, "node_cpu_seconds_total", &[("cpu", &cpu), ("mode", mode)], shape);
            }
        }
        let total = *self.rng.pick(&[8.0, 16.0, 32.0, 64.0]) * GIB;
        self.series(t, "node_memory_MemTotal_bytes", &[], Shape::Constant(total));
        self.series(t, "node_memory_SwapTotal_bytes", &[], Shape::Constant(0.0));
        for (name, lo, hi, step) in [
            ("node_memory_MemAvailable_bytes", 0.2, 0.8, 0.004),
            ("node_memory_MemFree_bytes", 0.05, 0.4, 0.004),
            ("node_memory_Buffers_bytes", 0.001, 0.01, 0.0001),
            ("node_memory_Cached_bytes", 0.1, 0.5, 0.002),
            ("node_memory_Active_bytes", 0.2, 0.6, 0.003),
            ("node_memory_Inactive_bytes", 0.1, 0.4, 0.002),
            ("node_memory_Dirty_bytes", 0.0, 0.001, 0.0002),
        ] {
            let shape = Shape::Gauge {
                step: step * total,
                min: lo * total,
                max: hi * total,
                grain: Grain::Multiple(4096.0),
            };
            self.series(t, name, &[], shape);
        }
        for &(device, fstype, mountpoint) in FILESYSTEMS {
            let l = [("device", device), ("fstype", fstype), ("mountpoint", mountpoint)];
            let size = self.rng.range(20, 500) as f64 * GIB;
            let files = (size / 16384.0).floor();
            self.series(t, "node_filesystem_size_bytes", &l, Shape::Constant(size));
            let avail = Shape::Gauge {
                step: 2e6,
                min: 0.1 * size,
                max: 0.9 * size,
                grain: Grain::Multiple(4096.0),
            };
            self.series(t, "node_filesystem_avail_bytes", &l, avail);
            self.series(t, "node_filesystem_files", &l, Shape::Constant(files));
            let free = Shape::Gauge {
                step: 40.0,
                min: 0.5 * files,
                max: files,
                grain: Grain::Multiple(1.0),
            };
            self.series(t, "node_filesystem_files_free", &l, free);
        }
        for device in ["eth0", "eth1", "lo"] {
            let bytes_per_s = self.rng.range_f64(2e4, 2e7);
            for dir in ["receive", "transmit"] {
                let bytes = self.counter(bytes_per_s, 0.7, Grain::Multiple(1.0));
                self.series(
                    t,
                    &format!("node_network_{dir}_bytes_total"),
                    &[("device", device)],
                    bytes,
                );
                let packets = self.counter(bytes_per_s / 900.0, 0.7, Grain::Multiple(1.0));
                self.series(
                    t,
                    &format!("node_network_{dir}_packets_total"),
                    &[("device", device)],
                    packets,
                );
            }
        }
        for device in ["nvme0n1", "nvme1n1"] {
            for dir in ["read", "written"] {
                let rate = self.rng.range_f64(1e3, 5e6);
                let shape = self.counter(rate, 0.9, Grain::Multiple(512.0));
                self.series(t, &format!("node_disk_{dir}_bytes_total"), &[("device", device)], shape);
            }
        }
        for (name, step) in [("node_load1", 0.4), ("node_load5", 0.15), ("node_load15", 0.05)] {
            let shape = Shape::Gauge {
                step,
                min: 0.0,
                max: cpus as f64,
                grain: Grain::Decimals(2),
            };
            self.series(t, name, &[], shape);
        }
        let boot = 1.7e9 + self.rng.range(0, 5_000_000) as f64;
        self.series(t, "node_boot_time_seconds", &[], Shape::Constant(boot));
        let clock = self.counter(1.0, 0.002, Grain::Exact);
        self.series(t, "node_time_seconds", &[], clock);
    }

    fn cadvisor(&mut self, t: &Target, pod: &Pod, cores: f64) {
        let cgroup = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            pod.uid.replace('-', "_")
        );
        for (container, image, cid) in &pod.containers {
            let id = format!("{cgroup}/cri-containerd-{cid}.scope");
            let l = [
                ("container", container.as_str()),
                ("id", id.as_str()),
                ("image", image.as_str()),
                ("namespace", pod.namespace.as_str()),
                ("pod", pod.name.as_str()),
            ];
            let share = if container == "istio-proxy" { 0.02 } else { cores };
            let cpu = self.counter(share, 0.5, Grain::Exact);
            self.series(t, "container_cpu_usage_seconds_total", &l, cpu);
            let limit = *self.rng.pick(&[0.25, 0.5, 1.0, 2.0, 4.0]) * GIB;
            let ws = Shape::Gauge {
                step: 2e6,
                min: 0.1 * limit,
                max: 0.9 * limit,
                grain: Grain::Multiple(4096.0),
            };
            self.series(t, "container_memory_working_set_bytes", &l, ws);
            let rss = Shape::Gauge {
                step: 1e6,
                min: 0.05 * limit,
                max: 0.8 * limit,
                grain: Grain::Multiple(4096.0),
            };
            self.series(t, "container_memory_rss", &l, rss);
            self.series(t, "container_spec_memory_limit_bytes", &l, Shape::Constant(limit));
            let throttle_rate = self.rng.range_f64(0.0, 0.3);
            let throttled = self.counter(throttle_rate, 1.0, Grain::Multiple(1.0));
            self.series(t, "container_cpu_cfs_throttled_periods_total", &l, throttled);
            let write_rate = self.rng.range_f64(0.0, 2e5);
            let writes = self.counter(write_rate, 1.0, Grain::Multiple(4096.0));
            self.series(t, "container_fs_writes_bytes_total", &l, writes);
        }
        let l = [
            ("id", cgroup.as_str()),
            ("interface", "eth0"),
            ("namespace", &pod.namespace),
            ("pod", &pod.name),
        ];
        let bytes_per_s = self.rng.range_f64(1e2, 5e6);
        for dir in ["receive", "transmit"] {
            let bytes = self.counter(bytes_per_s, 0.8, Grain::Multiple(1.0));
            self.series(t, &format!("container_network_{dir}_bytes_total"), &l, bytes);
            let packets = self.counter(bytes_per_s / 700.0, 0.8, Grain::Multiple(1.0));
            self.series(t, &format!("container_network_{dir}_packets_total"), &l, packets);
        }
    }

    fn kube_state(&mut self, t: &Target, pod: &Pod, host_ip: &str, node: &str) {
        let base = [
            ("namespace", pod.namespace.as_str()),
            ("pod", pod.name.as_str()),
            ("uid", pod.uid.as_str()),
        ];
        for phase in ["Failed", "Pending", "Running", "Succeeded", "Unknown"] {
            let v = if phase == "Running" { 1.0 } else { 0.0 };
            self.series(
                t,
                "kube_pod_status_phase",
                &[base[0], base[1], base[2], ("phase", phase)],
                Shape::Constant(v),
            );
        }
        for condition in ["false", "true", "unknown"] {
            let v = if condition == "true" { 1.0 } else { 0.0 };
            let l = [base[0], base[1], base[2], ("condition", condition)];
            self.series(t, "kube_pod_status_ready", &l, Shape::Constant(v));
        }
        let owner = pod.name.rsplit_once('-').map_or(pod.name.as_str(), |(o, _)| o);
        let info = [
            base[0],
            base[1],
            base[2],
            ("created_by_kind", "ReplicaSet"),
            ("created_by_name", owner),
            ("host_ip", host_ip),
            ("node", node),
            ("pod_ip", pod.ip.as_str()),
            ("priority_class", "default"),
        ];
        self.series(t, "kube_pod_info", &info, Shape::Constant(1.0));
        for (container, _, _) in &pod.containers {
            let l = [base[0], base[1], base[2], ("container", container.as_str())];
            let restarts = self.counter(0.000_02, 1.0, Grain::Multiple(1.0));
            self.series(t, "kube_pod_container_status_restarts_total", &l, restarts);
            let cpu = *self.rng.pick(&[0.05, 0.1, 0.25, 0.5, 1.0]);
            let mem = *self.rng.pick(&[0.125, 0.25, 0.5, 1.0]) * GIB;
            for (name, resource, unit, v) in [
                ("kube_pod_container_resource_requests", "cpu", "core", cpu),
                ("kube_pod_container_resource_requests", "memory", "byte", mem),
                ("kube_pod_container_resource_limits", "memory", "byte", 2.0 * mem),
            ] {
                let l = [l[0], l[1], l[2], l[3], ("resource", resource), ("unit", unit)];
                self.series(t, name, &l, Shape::Constant(v));
            }
        }
    }

    fn application(&mut self, pod: &Pod, d: &Deployment) {
        let t = self.target(vec![
            ("instance", format!("{}:8080", pod.ip)),
            ("job", d.name.clone()),
            ("namespace", pod.namespace.clone()),
            ("pod", pod.name.clone()),
        ]);
        self.scrape_meta(&t);
        let goroutines = self.rng.range_f64(20.0, 400.0);
        let g = Shape::Gauge {
            step: 4.0,
            min: goroutines * 0.5,
            max: goroutines * 2.0,
            grain: Grain::Multiple(1.0),
        };
        self.series(&t, "go_goroutines", &[], g);
        let threads = self.rng.range(8, 40) as f64;
        self.series(&t, "go_threads", &[], Shape::Constant(threads));
        let heap = self.rng.range_f64(2e7, 6e8);
        let h = Shape::Gauge {
            step: heap * 0.05,
            min: heap * 0.3,
            max: heap * 1.5,
            grain: Grain::Multiple(8.0),
        };
        self.series(&t, "go_memstats_heap_alloc_bytes", &[], h);
        let rss = Shape::Gauge {
            step: heap * 0.01,
            min: heap * 0.8,
            max: heap * 2.5,
            grain: Grain::Multiple(4096.0),
        };
        self.series(&t, "process_resident_memory_bytes", &[], rss);
        let cpu = self.counter(d.cores, 0.5, Grain::Decimals(2));
        self.series(&t, "process_cpu_seconds_total", &[], cpu);
        let fds = Shape::Gauge {
            step: 2.0,
            min: 10.0,
            max: 300.0,
            grain: Grain::Multiple(1.0),
        };
        self.series(&t, "process_open_fds", &[], fds);
        let start = 1.7e9 + self.rng.range(0, 5_000_000) as f64;
        self.series(&t, "process_start_time_seconds", &[], Shape::Constant(start));
        let gc = self.rng.range_f64(1e-5, 1e-3);
        for (i, q) in ["0", "0.25", "0.5", "0.75", "1"].into_iter().enumerate() {
            let m = 0.3 + i as f64 * 0.6;
            let shape = Shape::Gauge {
                step: gc * 0.2 * m,
                min: gc * 0.2 * m,
                max: gc * 3.0 * m,
                grain: Grain::Exact,
            };
            self.series(&t, "go_gc_duration_seconds", &[("quantile", q)], shape);
        }

        for &handler in &d.http_handlers {
            let methods: &[&str] = if handler.starts_with("/api") && self.rng.chance(0.5) {
                &["GET", "POST"]
            } else {
                &["GET"]
            };
            for &method in methods {
                let rps = self.rng.range_f64(0.2, 60.0);
                let ok = if method == "POST" { "201" } else { "200" };
                let l = [("code", ok), ("handler", handler), ("method", method)];
                let shape = self.counter(rps, 0.6, Grain::Multiple(1.0));
                self.series(&t, "http_requests_total", &l, shape);
                let mut codes = vec![];
                for _ in 0..self.rng.range(1, 4) {
                    let code = *self.rng.pick(ERROR_CODES);
                    let fraction = self.rng.range_f64(0.0002, 0.03);
                    // A code drawn twice is one series, as it would be on a real exporter.
                    if codes.contains(&code) {
                        continue;
                    }
                    codes.push(code);
                    let l = [("code", code), ("handler", handler), ("method", method)];
                    let shape = self.counter(rps * fraction, 0.8, Grain::Multiple(1.0));
                    self.series(&t, "http_requests_total", &l, shape);
                }
                let group = self.rng.next_u64();
                let scale = self.rng.range_f64(0.005, 0.4);
                let rate = rps * self.interval_s();
                for le in BUCKETS {
                    let bound = if *le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::INFINITY)
                    };
                    let l = [("handler", handler), ("le", *le), ("method", method)];
                    let shape = Shape::Bucket { le: bound, rate, scale };
                    self.series_in_group(&t, "http_request_duration_seconds_bucket", &l, shape, group);
                }
                let l = [("handler", handler), ("method", method)];
                let sum = Shape::HistogramSum { rate, scale };
                self.series_in_group(&t, "http_request_duration_seconds_sum", &l, sum, group);
                let count = Shape::Bucket {
                    le: f64::INFINITY,
                    rate,
                    scale,
                };
                self.series_in_group(&t, "http_request_duration_seconds_count", &l, count, group);
            }
        }
    }

    /// `__name__`, the `cluster` external label, the target's labels and `extra`, sorted by name.
    fn labels_of(&self, t: &Target, name: &str, extra: &[(&'static str, &str)]) -> Vec<Label> {
        let mut labels = Vec::with_capacity(2 + t.labels.len() + extra.len());
        labels.push(Label {
            name: "__name__".into(),
            value: name.into(),
        });
        labels.push(Label {
            name: "cluster".into(),
            value: self.cluster.clone(),
        });
        labels.extend(t.labels.iter().map(|(n, v)| Label {
            name: (*n).into(),
            value: v.clone(),
        }));
        labels.extend(extra.iter().map(|(n, v)| Label {
            name: (*n).into(),
            value: (*v).into(),
        }));
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        labels
    }
}
