//! A synthetic node-exporter-like workload for size measurements and benchmarks.
//!
//! Per node (~390 series): CPU-seconds counters with fractional increments, network/disk/vmstat
//! counters incrementing by random integers (some rarely moving), memory and filesystem gauges
//! random-walking in page-size steps, load averages with two decimals, and many constant series
//! (`*_info`, sizes, boot time). Labels look like a Kubernetes scrape (instance, job, namespace,
//! pod, container, endpoint, service, node). Deterministic for a given seed.

use crate::types::{Label, Labels, STALE_NAN_BITS, Sample, Series};

/// SplitMix64: tiny, fast and good enough for synthetic data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (same seed, same sequence).
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How a series' value evolves per scrape.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Constant(f64),
    /// Counter: `+ below(max_step) * unit` per scrape; `idle_pct` of scrapes add nothing.
    Counter {
        unit: f64,
        max_step: u64,
        idle_pct: u64,
    },
    /// Gauge: random walk by `±below(max_step) * unit`, starting at `start`.
    Walk {
        start: f64,
        unit: f64,
        max_step: u64,
    },
}

/// The workload's parameters.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The `cluster` label of every series.
    pub cluster: String,
    /// Simulated nodes (each exports the same metric families).
    pub nodes: usize,
    /// Samples per series.
    pub samples: usize,
    /// First sample time (ms).
    pub start_ms: i64,
    /// Scrape interval (ms).
    pub interval_ms: i64,
    /// Percent of scrapes whose timestamp is off the grid by a few milliseconds.
    pub jitter_pct: u64,
    /// Seed of the pseudo-random values.
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            cluster: "prod-eu-1".into(),
            nodes: 16,
            samples: 240,
            start_ms: 1_767_225_600_000,
            interval_ms: 15_000,
            jitter_pct: 5,
            seed: 42,
        }
    }
}

impl Workload {
    /// Generates the series.
    pub fn series(&self) -> Vec<Series> {
        let mut rng = Rng::new(self.seed);
        let mut out = Vec::new();
        for node in 0..self.nodes {
            let instance = format!("10.{}.{}.{}:9100", node / 65536 % 256, node / 256 % 256, node % 256);
            let pod = format!("node-exporter-{:05x}", rng.below(1 << 20));
            let node_name = format!("ip-10-0-{}-{}.eu-west-1.compute.internal", node / 256, node % 256);
            let base: Vec<(&str, String)> = vec![
                ("cluster", self.cluster.clone()),
                ("container", "node-exporter".into()),
                ("endpoint", "metrics".into()),
                ("instance", instance),
                ("job", "node-exporter".into()),
                ("namespace", "monitoring".into()),
                ("node", node_name),
                ("pod", pod),
                ("service", "kube-prometheus-stack-prometheus-node-exporter".into()),
            ];
            // Targets are scraped at their own offset within the interval.
            let offset = rng.below(self.interval_ms as u64) as i64;
            let times: Vec<i64> = (0..self.samples as i64)
                .map(|i| {
                    let jitter = if rng.below(100) < self.jitter_pct {
                        rng.below(7) as i64 - 3
                    } else {
                        0
                    };
                    self.start_ms + offset + i * self.interval_ms + jitter
                })
                .collect();
            for (name, extra, shape) in node_series(&mut rng) {
                let mut labels: Vec<Label> = base.iter().map(|(n, v)| Label::new(*n, v.clone())).collect();
                labels.push(Label::new("__name__", name));
                labels.extend(extra.into_iter().map(|(n, v)| Label::new(n, v)));
                let samples = evolve(&mut rng, shape, &times);
                out.push(Series::new(Labels::new(labels), samples));
            }
        }
        out
    }
}

fn evolve(rng: &mut Rng, shape: Shape, times: &[i64]) -> Vec<Sample> {
    let mut v = match shape {
        Shape::Constant(c) => c,
        Shape::Counter { unit, .. } => (rng.below(1_000_000_000) as f64 * unit).round(),
        Shape::Walk { start, .. } => start,
    };
    let mut out = Vec::with_capacity(times.len() + 1);
    for &t in times {
        match shape {
            Shape::Constant(_) => {}
            Shape::Counter {
                unit,
                max_step,
                idle_pct,
            } => {
                if rng.below(100) >= idle_pct {
                    // Multiply an integer count by the unit: fractional counters keep their decimals.
                    v = ((v / unit).round() + rng.below(max_step) as f64) * unit;
                }
            }
            Shape::Walk { unit, max_step, .. } => {
                let step = rng.below(max_step) as f64 * unit;
                v = if rng.below(2) == 0 {
                    v + step
                } else {
                    (v - step).max(0.0)
                };
            }
        }
        out.push(Sample::new(t, v));
    }
    // A target restart leaves a staleness marker now and then.
    if rng.below(200) == 0
        && let Some(last) = out.last_mut()
    {
        last.value = f64::from_bits(STALE_NAN_BITS);
    }
    out
}

type Spec = (String, Vec<(&'static str, String)>, Shape);

fn node_series(rng: &mut Rng) -> Vec<Spec> {
    let mut out: Vec<Spec> = Vec::new();
    let mut push = |name: &str, extra: Vec<(&'static str, String)>, shape| out.push((name.to_string(), extra, shape));
    let modes = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"];
    for cpu in 0..8 {
        for mode in modes {
            let max_step = if mode == "idle" { 1500 } else { 150 };
            let idle_pct = if matches!(mode, "steal" | "nice" | "irq") {
                90
            } else {
                5
            };
            let shape = Shape::Counter {
                unit: 0.01,
                max_step,
                idle_pct,
            };
            push(
                "node_cpu_seconds_total",
                vec![("cpu", cpu.to_string()), ("mode", mode.into())],
                shape,
            );
        }
    }
    for dev in ["eth0", "eth1", "lo", "cni0"] {
        for (m, max_step, idle) in [
            ("receive_bytes", 5_000_000, 2),
            ("transmit_bytes", 5_000_000, 2),
            ("receive_packets", 5_000, 2),
            ("transmit_packets", 5_000, 2),
            ("receive_errs", 3, 98),
            ("transmit_errs", 3, 99),
            ("receive_drop", 5, 95),
            ("transmit_drop", 5, 99),
            ("receive_multicast", 10, 90),
            ("transmit_colls", 1, 100),
        ] {
            let shape = Shape::Counter {
                unit: 1.0,
                max_step,
                idle_pct: idle,
            };
            push(&format!("node_network_{m}_total"), vec![("device", dev.into())], shape);
        }
    }
    for dev in ["nvme0n1", "nvme1n1", "dm-0"] {
        for (m, max_step, idle) in [
            ("reads_completed", 200, 30),
            ("writes_completed", 500, 10),
            ("read_bytes", 2_000_000, 30),
            ("written_bytes", 8_000_000, 10),
            ("io_time_seconds", 300, 10),
            ("read_time_seconds", 100, 30),
            ("write_time_seconds", 300, 10),
            ("io_time_weighted_seconds", 500, 10),
            ("discards_completed", 10, 95),
            ("flush_requests", 20, 50),
        ] {
            let unit = if m.ends_with("seconds") { 0.001 } else { 1.0 };
            let shape = Shape::Counter {
                unit,
                max_step,
                idle_pct: idle,
            };
            push(&format!("node_disk_{m}_total"), vec![("device", dev.into())], shape);
        }
    }
    for i in 0..60 {
        let shape = if i < 20 {
            Shape::Constant((rng.below(1 << 24) * 4096) as f64)
        } else {
            Shape::Walk {
                start: (rng.below(1 << 22) * 4096) as f64,
                unit: 4096.0,
                max_step: 2000,
            }
        };
        push(&format!("node_memory_field{i:02}_bytes"), vec![], shape);
    }
    for mount in ["/", "/boot", "/var/lib/kubelet", "/var/lib/containerd", "/run", "/tmp"] {
        let ex = || {
            vec![
                ("device", "/dev/nvme0n1p1".to_string()),
                ("fstype", "ext4".into()),
                ("mountpoint", mount.into()),
            ]
        };
        let size = (rng.below(1 << 20) << 20) as f64;
        push("node_filesystem_size_bytes", ex(), Shape::Constant(size));
        push("node_filesystem_files", ex(), Shape::Constant(6_553_600.0));
        let walk = Shape::Walk {
            start: size / 2.0,
            unit: 4096.0,
            max_step: 500,
        };
        push("node_filesystem_avail_bytes", ex(), walk);
        push("node_filesystem_free_bytes", ex(), walk);
        push(
            "node_filesystem_files_free",
            ex(),
            Shape::Walk {
                start: 6_000_000.0,
                unit: 1.0,
                max_step: 50,
            },
        );
    }
    for m in ["node_load1", "node_load5", "node_load15"] {
        push(
            m,
            vec![],
            Shape::Walk {
                start: 2.0,
                unit: 0.01,
                max_step: 20,
            },
        );
    }
    for i in 0..100 {
        push(
            &format!("node_constant{i:03}_info"),
            vec![("version", format!("v1.{i}.0"))],
            Shape::Constant(1.0),
        );
    }
    for i in 0..50 {
        let shape = Shape::Counter {
            unit: 1.0,
            max_step: 10 + 100 * (i % 5),
            idle_pct: 20 * (i % 4),
        };
        push(&format!("node_vmstat_counter{i:02}_total"), vec![], shape);
    }
    out
}
