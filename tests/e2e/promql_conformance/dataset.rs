//! The deterministic dataset both servers receive.
//!
//! 45 minutes of 15-second samples starting at a whole minute about 50 minutes ago (inside
//! Prometheus 2.42's appendable head window), every sample 137 ms past its grid point so that no
//! sample ever lies on a window boundary of a query evaluated at whole or half seconds: that is
//! where Prometheus 2.42 (closed windows) and Prometheus 3 (left-open windows, Tributary's
//! semantics) legitimately differ.
//!
//! Families: counters with resets, gauges with negative values, classic histograms (`_bucket`,
//! `_sum`, `_count`, one with a reset, one non-monotonic), NaN and ±Inf values, gaps longer than
//! the lookback delta, explicit staleness markers, odd label values (quotes, backslashes,
//! newlines, UTF-8), three clusters, several jobs and instances.

/// Seconds between samples.
pub(super) const INTERVAL_MS: i64 = 15_000;
/// How far past the grid every sample lies.
pub(super) const SKEW_MS: i64 = 137;
/// Samples per full series: 0..=180, i.e. 45 minutes.
pub(super) const SAMPLES: i64 = 181;
/// Prometheus's staleness marker.
pub(super) const STALE: f64 = f64::from_bits(0x7ff0_0000_0000_0002);
/// The NaN Go's `math.NaN()` produces (what Prometheus itself writes).
pub(super) const NAN: f64 = f64::from_bits(0x7ff8_0000_0000_0001);

pub(super) const CLUSTERS: [&str; 3] = ["eu-1", "us-2", "ap-3"];
pub(super) const JOBS: [&str; 2] = ["api", "worker"];
pub(super) const INSTANCES: [&str; 2] = ["i-0", "i-1"];
pub(super) const BUCKETS: [&str; 7] = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];

#[derive(Debug)]
pub(super) struct Series {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

#[derive(Debug)]
pub(super) struct Dataset {
    /// The grid origin: a whole minute, milliseconds since the epoch.
    pub base_ms: i64,
    pub series: Vec<Series>,
}

impl Dataset {
    pub(super) fn build(now_ms: i64) -> Self {
        let base_ms = (now_ms - 50 * 60_000) / 60_000 * 60_000;
        let mut b = Builder {
            base_ms,
            series: Vec::new(),
            rng: Rng(0x9e37_79b9_7f4a_7c15),
        };
        b.counters();
        b.gauges();
        b.histograms();
        b.odd_values();
        b.gaps_and_staleness();
        b.odd_labels();
        b.info_and_dates();
        Self {
            base_ms,
            series: b.series,
        }
    }

    /// The time `minutes` and `millis` after the grid origin, in seconds as the API takes it.
    pub(super) fn at(&self, minutes: i64, millis: i64) -> f64 {
        (self.base_ms + minutes * 60_000 + millis) as f64 / 1000.0
    }

    pub(super) fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// xorshift64*: deterministic, no dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> f64 {
        (self.next() % n) as f64
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Builder {
    base_ms: i64,
    series: Vec<Series>,
    rng: Rng,
}

impl Builder {
    fn time(&self, k: i64) -> i64 {
        self.base_ms + k * INTERVAL_MS + SKEW_MS
    }

    fn push(&mut self, labels: &[(&str, &str)], points: impl IntoIterator<Item = (i64, f64)>) {
        let samples = points.into_iter().map(|(k, v)| (self.time(k), v)).collect();
        self.series.push(Series {
            labels: labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            samples,
        });
    }

    /// `http_requests_total`: 24 counters, float and integer increments, three resets.
    fn counters(&mut self) {
        let mut n = 0;
        for cluster in CLUSTERS {
            for job in JOBS {
                for instance in INSTANCES {
                    for code in ["200", "500"] {
                        let resets: &[i64] = match n {
                            0 => &[60],
                            13 => &[100, 150],
                            _ => &[],
                        };
                        // Long-running processes: counters start far from zero (see `histograms`).
                        let mut v = 1000.0 + self.rng.below(1000);
                        let mut points = Vec::new();
                        for k in 0..SAMPLES {
                            if resets.contains(&k) {
                                v = self.rng.below(5);
                            } else if code == "200" {
                                v += self.rng.below(20) + self.rng.below(10) / 10.0;
                            } else {
                                v += self.rng.below(3);
                            }
                            points.push((k, v));
                        }
                        let labels = [
                            ("__name__", "http_requests_total"),
                            ("cluster", cluster),
                            ("job", job),
                            ("instance", instance),
                            ("code", code),
                        ];
                        self.push(&labels, points);
                        n += 1;
                    }
                }
            }
        }
    }

    /// `temperature_celsius` (partly negative), `ratio_gauge` in (-1, 1) with the same labels,
    /// `node_memory_bytes` (large), `up` (0/1), `build_info` (1, with a `version`).
    fn gauges(&mut self) {
        for (ci, cluster) in CLUSTERS.iter().enumerate() {
            let offset = [-15.0, 5.0, 30.0][ci];
            for (ii, instance) in INSTANCES.iter().enumerate() {
                for (si, sensor) in ["cpu", "gpu"].iter().enumerate() {
                    let phase = (ci * 4 + ii * 2 + si) as f64;
                    let amplitude = 5.0 + 5.0 * si as f64;
                    let noise: Vec<f64> = (0..SAMPLES).map(|_| self.rng.unit()).collect();
                    let labels = [("cluster", *cluster), ("instance", *instance), ("sensor", *sensor)];
                    let temperature = (0..SAMPLES).map(|k| {
                        (
                            k,
                            amplitude * (k as f64 / 7.0 + phase).sin() + offset + noise[k as usize],
                        )
                    });
                    self.push(&with_name("temperature_celsius", &labels), temperature);
                    let ratio = (0..SAMPLES).map(|k| (k, 0.99 * (k as f64 / 5.0 + phase).sin()));
                    self.push(&with_name("ratio_gauge", &labels), ratio);
                }
                let memory: Vec<(i64, f64)> = (0..SAMPLES)
                    .map(|k| (k, 8e9 + (self.rng.below(100_000_000) * 16.0)))
                    .collect();
                self.push(
                    &[
                        ("__name__", "node_memory_bytes"),
                        ("cluster", cluster),
                        ("instance", instance),
                    ],
                    memory,
                );
            }
            for (ji, job) in JOBS.iter().enumerate() {
                for (ii, instance) in INSTANCES.iter().enumerate() {
                    let idx = (ci * 4 + ji * 2 + ii) as i64;
                    let labels = [("cluster", *cluster), ("job", *job), ("instance", *instance)];
                    let up = (0..SAMPLES).map(|k| (k, if (k + idx * 17) % 50 < 5 { 0.0 } else { 1.0 }));
                    self.push(&with_name("up", &labels), up);
                    let version = if *instance == "i-0" { "v1.2.3" } else { "v2.0.0" };
                    let mut info = with_name("build_info", &labels);
                    info.push(("version", version));
                    self.push(&info, (0..SAMPLES).map(|k| (k, 1.0)));
                }
            }
        }
    }

    /// `request_duration_seconds` for every cluster and job, the `ap-3`/`worker` one reset
    /// midway; plus `job="broken"` whose bucket counts are not monotonic.
    fn histograms(&mut self) {
        let name = |suffix: &str| format!("request_duration_seconds_{suffix}");
        for cluster in CLUSTERS {
            for job in JOBS {
                let reset_at = (cluster == "ap-3" && job == "worker").then_some(90);
                let bounds: Vec<f64> = BUCKETS.iter().map(|b| b.parse().unwrap()).collect();
                // Counts start where a long-running process has them. A counter starting near
                // zero inside a rate window is extrapolated differently by Prometheus 3 (zero
                // point cut after the extrapolation threshold) than by 2.x (before it).
                let total = 1000.0 + self.rng.below(4000);
                let fractions = [0.05, 0.12, 0.3, 0.55, 0.8, 0.95, 1.0];
                let mut counts = fractions.map(|f: f64| (f * total).round());
                let mut sum = total * 0.7;
                let mut rows: Vec<([f64; 7], f64)> = Vec::new();
                for k in 0..SAMPLES {
                    if Some(k) == reset_at {
                        counts = [0.0; 7];
                        sum = 0.0;
                    }
                    for _ in 0..self.rng.below(8) as usize {
                        let observed = self.rng.unit().powi(2) * 3.0;
                        sum += observed;
                        for (count, bound) in counts.iter_mut().zip(&bounds) {
                            if observed <= *bound {
                                *count += 1.0;
                            }
                        }
                    }
                    rows.push((counts, sum));
                }
                let bucket_name = name("bucket");
                for (b, le) in BUCKETS.iter().enumerate() {
                    let labels = [
                        ("__name__", bucket_name.as_str()),
                        ("cluster", cluster),
                        ("job", job),
                        ("le", le),
                    ];
                    let points: Vec<(i64, f64)> = rows.iter().enumerate().map(|(k, r)| (k as i64, r.0[b])).collect();
                    self.push(&labels, points);
                }
                let labels = |suffix: &str| {
                    vec![
                        ("__name__".to_string(), name(suffix)),
                        ("cluster".to_string(), cluster.to_string()),
                        ("job".to_string(), job.to_string()),
                    ]
                };
                for (suffix, column) in [("sum", 0usize), ("count", 1)] {
                    let owned = labels(suffix);
                    let refs: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    let points: Vec<(i64, f64)> = rows
                        .iter()
                        .enumerate()
                        .map(|(k, r)| (k as i64, if column == 0 { r.1 } else { r.0[6] }))
                        .collect();
                    self.push(&refs, points);
                }
            }
        }
        // Rates per bucket of a non-cumulative histogram: le=0.5 lags behind le=0.25.
        let per_sample = [2.0, 4.0, 10.0, 8.0, 12.0, 12.0, 13.0];
        for (b, le) in BUCKETS.iter().enumerate() {
            let labels = [
                ("__name__", "request_duration_seconds_bucket"),
                ("cluster", "eu-1"),
                ("job", "broken"),
                ("le", le),
            ];
            self.push(&labels, (0..SAMPLES).map(|k| (k, per_sample[b] * (k + 500) as f64)));
        }
    }

    /// `odd_gauge{kind}`: NaN, ±Inf, only-NaN, huge, tiny, signed zeros and negative series.
    fn odd_values(&mut self) {
        type Kind = (&'static str, fn(i64) -> f64);
        let kinds: [Kind; 8] = [
            ("nan", |k| if k % 7 == 3 { NAN } else { k as f64 / 3.0 - 20.0 }),
            ("posinf", |k| {
                if k % 11 == 5 {
                    f64::INFINITY
                } else {
                    2.5 * (k as f64).sin()
                }
            }),
            ("neginf", |k| {
                if k % 13 == 0 {
                    f64::NEG_INFINITY
                } else {
                    (k as f64).cos() - 0.5
                }
            }),
            ("allnan", |_| NAN),
            ("big", |k| 1e300 * (1.5 + (k as f64 / 3.0).sin())),
            ("tiny", |k| 1e-300 * (k as f64 + 1.0)),
            ("zero", |k| if k % 2 == 0 { 0.0 } else { -0.0 }),
            ("negative", |k| -(k as f64) * 1.5 - 0.25),
        ];
        for (kind, f) in kinds {
            let labels = [("__name__", "odd_gauge"), ("cluster", "eu-1"), ("kind", kind)];
            self.push(&labels, (0..SAMPLES).map(|k| (k, f(k))));
        }
    }

    /// `flappy_gauge`: gaps longer than the 5m lookback, late starts, early ends, sparse
    /// scrapes. `stale_gauge`: explicit staleness markers, then the series comes back.
    fn gaps_and_staleness(&mut self) {
        let mut idx = 0;
        for cluster in CLUSTERS {
            for instance in INSTANCES {
                let present: fn(i64) -> bool = match idx {
                    0 => |k| !(61..92).contains(&k),
                    1 => |k| k <= 120,
                    2 => |k| k >= 40,
                    3 => |k| k % 4 == 0,
                    4 => |k| (k / 30) % 2 == 0,
                    _ => |_| true,
                };
                let mut v = 50.0;
                let mut points = Vec::new();
                for k in 0..SAMPLES {
                    v += self.rng.below(11) - 5.0;
                    if present(k) {
                        points.push((k, v));
                    }
                }
                self.push(
                    &[
                        ("__name__", "flappy_gauge"),
                        ("cluster", cluster),
                        ("instance", instance),
                    ],
                    points,
                );
                // A counter with the same gaps, for rates across them.
                let mut v = 10_000.0 + self.rng.below(1000);
                let mut points = Vec::new();
                for k in 0..SAMPLES {
                    v += self.rng.below(30);
                    if present(k) {
                        points.push((k, v));
                    }
                }
                self.push(
                    &[
                        ("__name__", "gappy_requests_total"),
                        ("cluster", cluster),
                        ("instance", instance),
                    ],
                    points,
                );
                idx += 1;
            }
        }
        for cluster in ["eu-1", "us-2"] {
            for instance in INSTANCES {
                let mut points = Vec::new();
                for k in 0..SAMPLES {
                    let value = 100.0 + (k as f64 / 4.0).cos() * 10.0;
                    match (instance, k) {
                        (_, 50) | (_, 130) => points.push((k, STALE)),
                        (_, 51..70) | (_, 131..150) => {}
                        ("i-1", 160) => points.push((k, STALE)),
                        ("i-1", 161..) => {}
                        _ => points.push((k, value)),
                    }
                }
                self.push(
                    &[
                        ("__name__", "stale_gauge"),
                        ("cluster", cluster),
                        ("instance", instance),
                    ],
                    points,
                );
            }
        }
    }

    /// `odd_labels`: label values with quotes, backslashes, newlines, tabs and UTF-8.
    fn odd_labels(&mut self) {
        let rows = [
            ("/a \"quoted\" \\ back", "plain", "ascii"),
            ("/b", "line1\nline2", "héllo wörld ✓ 日本"),
            ("/c", "tab\there", "🚀 emoji"),
        ];
        for (i, (path, msg, text)) in rows.iter().enumerate() {
            let labels = [
                ("__name__", "odd_labels"),
                ("cluster", "us-2"),
                ("path", *path),
                ("msg", *msg),
                ("utf8", *text),
            ];
            self.push(&labels, (0..SAMPLES).map(|k| (k, (k as f64) * (i as f64 + 1.0))));
        }
    }

    /// `boot_time_seconds`: Unix times across leap days, the epoch, before it, and far ahead,
    /// each advancing 7919 s per sample, for the date functions.
    fn info_and_dates(&mut self) {
        let starts = [1_709_214_310.0, 0.0, -86_401.0, 951_782_399.5, 4_107_455_999.0, 1e11];
        for (i, start) in starts.iter().enumerate() {
            let instance = format!("i-{i}");
            let labels = [
                ("__name__", "boot_time_seconds"),
                ("cluster", "eu-1"),
                ("instance", instance.as_str()),
            ];
            self.push(&labels, (0..SAMPLES).map(|k| (k, start + 7919.0 * k as f64)));
        }
    }
}

fn with_name<'a>(name: &'a str, labels: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("__name__", name)];
    all.extend_from_slice(labels);
    all
}
