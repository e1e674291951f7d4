use std::sync::atomic::{AtomicU64, Ordering};

use tributary_storage::types::{Label, Series};

use super::*;
use crate::config::LimitsOverride;
use crate::head::input::Input;

/// A clock tests move by hand.
#[derive(Debug, Default)]
struct ManualClock {
    nanos: AtomicU64,
    wall_ms: AtomicU64,
}

impl ManualClock {
    fn advance(&self, d: Duration) {
        self.nanos.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
    fn now_ms(&self) -> i64 {
        self.wall_ms.load(Ordering::Relaxed) as i64
    }
}

struct NoHead;

impl LabelsOf for NoHead {
    fn labels_of(&self, _: crate::head::input::RawKey) -> Option<Arc<tributary_storage::types::Labels>> {
        None
    }

    fn cluster_of(&self, _: crate::head::input::RawKey) -> Option<u32> {
        None
    }

    fn cluster_at(&self, _: u32) -> Option<Arc<str>> {
        None
    }
}

fn quotas(cfg: LimitsConfig) -> (Quotas, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock {
        wall_ms: AtomicU64::new(1_700_000_000_000),
        ..Default::default()
    });
    (Quotas::new(&cfg, clock.clone()), clock)
}

fn usage(pairs: &[(&str, u64)]) -> Usage {
    Usage {
        clusters: pairs
            .iter()
            .map(|(c, n)| {
                (
                    c.to_string(),
                    restrict::ClusterUsage {
                        samples: *n,
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

fn series(cluster: &str, name: &str, i: usize, ts: &[i64]) -> Series {
    let labels = vec![
        Label::new("__name__", name),
        Label::new("cluster", cluster),
        Label::new("i", i.to_string()),
    ];
    Series::new(
        tributary_storage::types::Labels::from_sorted(labels),
        ts.iter()
            .map(|&t| Sample {
                timestamp: t,
                value: 1.0,
            })
            .collect(),
    )
}

use tributary_storage::types::Sample;

/// Applies the live limits to owned series (OTLP's path) and returns what was kept, by `i`.
fn live_write(q: &Quotas, s: Vec<Series>) -> (Vec<String>, Tally, Refused, Vec<Hit>) {
    let mut input = Input {
        series: s,
        ..Default::default()
    };
    let mut live = q.live();
    let mut t = Tally::default();
    restrict(&mut input, &NoHead, &mut live, &mut t);
    let kept = input
        .series
        .iter()
        .map(|s| format!("{}/{}", s.labels.get("__name__").unwrap(), s.labels.get("i").unwrap()))
        .collect();
    (kept, t, live.refused, live.hits)
}

#[test]
fn overrides_match_by_glob_first_wins_and_unset_fields_keep_the_defaults() {
    let cfg = LimitsConfig {
        ingestion_rate: 100.0,
        max_series_per_cluster: 10,
        overrides: vec![
            LimitsOverride {
                clusters: "prod-*".into(),
                ingestion_rate: Some(1000.0),
                ..Default::default()
            },
            LimitsOverride {
                clusters: "prod-eu-?".into(),
                ingestion_rate: Some(5.0),
                max_series_per_cluster: Some(3),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let prod = ClusterLimits::resolve(&cfg, "prod-eu-1");
    assert_eq!(prod.ingestion_rate, 1000.0);
    assert_eq!(prod.ingestion_burst, 10_000.0, "unset burst is 10 s of the rate");
    assert_eq!(prod.max_series_per_cluster, 10, "unset in the override: the default");
    let dev = ClusterLimits::resolve(&cfg, "dev");
    assert_eq!((dev.ingestion_rate, dev.max_future), (100.0, Duration::from_secs(600)));
}

#[test]
fn a_cluster_over_its_rate_is_refused_whole_with_its_retry_after_and_others_are_not() {
    let (q, clock) = quotas(LimitsConfig {
        ingestion_rate: 100.0,
        ingestion_burst: 200,
        ..Default::default()
    });
    assert!(q.admit(&usage(&[("bad", 200)])).is_ok());
    let (e, hit) = *q.admit(&usage(&[("bad", 150)])).unwrap_err();
    assert_eq!(
        hit,
        Hit {
            cluster: "bad".into(),
            limit: "ingestion_rate",
            count: 1
        }
    );
    // 150 samples at 100/s from an empty bucket: 1.5 s, answered as 2.
    assert_eq!(e.retry_after_secs(), Some(2));
    assert!(e.retryable());
    let msg = e.to_string();
    assert!(msg.contains("\"bad\"") && msg.contains("ingestion_rate"), "{msg}");
    // Another cluster has its own bucket.
    assert!(q.admit(&usage(&[("good", 200)])).is_ok());
    // After the advertised delay the same write passes.
    clock.advance(Duration::from_millis(1500));
    assert!(q.admit(&usage(&[("bad", 150)])).is_ok());
}

#[test]
fn a_write_refused_for_one_cluster_takes_no_tokens_from_the_others() {
    let (q, _) = quotas(LimitsConfig {
        ingestion_rate: 10.0,
        ingestion_burst: 100,
        ..Default::default()
    });
    assert!(q.admit(&usage(&[("b", 100)])).is_ok());
    assert!(q.admit(&usage(&[("a", 100), ("b", 1)])).is_err());
    // "a" got its tokens back: its whole burst is still there.
    assert!(q.admit(&usage(&[("a", 100)])).is_ok());
}

#[test]
fn log_bytes_have_their_own_bucket() {
    let (q, _) = quotas(LimitsConfig {
        log_bytes_rate: 1000.0,
        ..Default::default()
    });
    let mut u = usage(&[("c", 1_000_000)]);
    u.clusters[0].1.log_bytes = 10_000;
    assert!(q.admit(&u).is_ok(), "samples are unlimited; 10 kB is the log burst");
    u.clusters[0].1.log_bytes = 1;
    let (e, hit) = *q.admit(&u).unwrap_err();
    assert_eq!(hit.limit, "log_bytes_rate");
    assert_eq!(e.retry_after_secs(), Some(1));
}

/// Span bytes: a bucket of their own, per cluster, refunded when another cluster's rate refuses
/// the same write; an override sets one cluster's rate.
#[test]
fn span_bytes_have_their_own_bucket() {
    let (q, _) = quotas(LimitsConfig {
        span_bytes_rate: 1000.0,
        log_bytes_rate: 1000.0,
        overrides: vec![crate::config::LimitsOverride {
            clusters: "big-*".into(),
            span_bytes_rate: Some(1e9),
            ..Default::default()
        }],
        ..Default::default()
    });
    let write = |cluster: &str, span_bytes: u64, log_bytes: u64| Usage {
        clusters: vec![(
            cluster.to_string(),
            restrict::ClusterUsage {
                span_bytes,
                spans: 1,
                log_bytes,
                ..Default::default()
            },
        )],
    };
    assert!(q.admit(&write("c", 10_000, 0)).is_ok(), "10 kB is the span burst");
    let (e, hit) = *q.admit(&write("c", 10_000, 0)).unwrap_err();
    assert_eq!((hit.limit, hit.cluster.as_str()), ("span_bytes_rate", "c"));
    assert!(e.to_string().contains("span bytes"), "{e}");
    assert!(q.admit(&write("big-1", 1_000_000, 0)).is_ok(), "the override's rate");
    // "d" takes log tokens, then its spans are refused: the log tokens come back.
    assert!(q.admit(&write("d", 10_000, 5_000)).is_ok());
    assert!(q.admit(&write("d", 10_000, 5_000)).is_err());
    assert!(q.admit(&write("d", 0, 5_000)).is_ok(), "refunded");
    assert!(q.admit(&write("d", 0, 5_000)).is_err(), "now spent");
}

#[test]
fn series_caps_refuse_new_series_and_keep_existing_ones_flowing() {
    let (q, _) = quotas(LimitsConfig {
        max_series_per_cluster: 3,
        max_series_per_metric: 2,
        ..Default::default()
    });
    let now = 1_700_000_000_000;
    let (kept, t, refused, hits) = live_write(
        &q,
        vec![
            series("c", "a", 0, &[now]),
            series("c", "a", 1, &[now]),
            series("c", "a", 2, &[now]),
            series("c", "b", 3, &[now]),
        ],
    );
    assert_eq!(kept, ["a/0", "a/1", "b/3"]);
    assert_eq!((t.series, t.samples), (1, 1));
    assert!(t.reasons[0].contains("max_series_per_metric"), "{:?}", t.reasons);
    assert_eq!(refused.series, [series("c", "a", 2, &[]).labels.series_id().0]);
    assert_eq!(hits[0].limit, "max_series_per_metric");
    assert_eq!(q.active("c"), 3);
    // The cluster is full: a new series is refused, the active ones keep flowing.
    let (kept, t, _, hits) = live_write(
        &q,
        vec![
            series("c", "a", 0, &[now + 1]),
            series("c", "d", 4, &[now + 1]),
            series("c", "b", 3, &[now + 1]),
        ],
    );
    assert_eq!(kept, ["a/0", "b/3"]);
    assert!(t.reasons[0].contains("max_series_per_cluster"), "{:?}", t.reasons);
    assert_eq!(hits[0].limit, "max_series_per_cluster");
    // Another cluster has its own count; a flush makes room again.
    assert_eq!(live_write(&q, vec![series("other", "d", 4, &[now])]).0, ["d/4"]);
    q.reset_active();
    assert_eq!(live_write(&q, vec![series("c", "d", 4, &[now])]).0, ["d/4"]);
}

#[test]
fn samples_outside_the_window_are_refused_alone_and_the_window_is_recorded() {
    let (q, _) = quotas(LimitsConfig {
        max_sample_age: Duration::from_secs(3600),
        max_future: Duration::from_secs(600),
        ..Default::default()
    });
    let now = 1_700_000_000_000;
    let hour = 3_600_000;
    let (kept, t, refused, hits) = live_write(
        &q,
        vec![
            series("c", "m", 0, &[now - 2 * hour, now, now + 600_000]),
            series("c", "m", 1, &[now + 600_001]),
        ],
    );
    assert_eq!(kept, ["m/0"]);
    assert_eq!((t.series, t.samples), (1, 2));
    assert_eq!(refused.windows, [("c".to_string(), now - hour, now + 600_000)]);
    let limits: Vec<_> = hits.iter().map(|h| (h.limit, h.count)).collect();
    assert_eq!(limits, [("max_sample_age", 1), ("max_future", 1)]);
}

/// Replay applies no limit but drops exactly what the record says was refused.
#[test]
fn native_histogram_series_count_towards_the_caps() {
    use tributary_storage::signals::{HistogramSample, HistogramSeries};
    let (q, _) = quotas(LimitsConfig {
        max_series_per_cluster: 2,
        ..Default::default()
    });
    let now = 1_700_000_000_000;
    let histogram = |i: usize| HistogramSeries {
        labels: series("c", "h", i, &[]).labels,
        samples: vec![HistogramSample {
            timestamp: now,
            ..Default::default()
        }],
    };
    let mut input = Input {
        series: vec![series("c", "a", 0, &[now])],
        ..Default::default()
    };
    input.signals.histograms = vec![histogram(1), histogram(2), histogram(1)];
    let mut live = q.live();
    let mut t = Tally::default();
    restrict(&mut input, &NoHead, &mut live, &mut t);
    let kept: Vec<_> = input
        .signals
        .histograms
        .iter()
        .map(|h| h.labels.get("i").unwrap().to_string())
        .collect();
    assert_eq!(
        kept,
        ["1", "1"],
        "the float series and histogram 1 fill the cap; 1 stays active"
    );
    assert_eq!((t.series, t.histograms), (1, 1));
    assert!(t.reasons[0].contains("max_series_per_cluster"), "{:?}", t.reasons);
    assert_eq!(live.refused.series, [series("c", "h", 2, &[]).labels.series_id().0]);
    assert_eq!(q.active("c"), 2);
}

#[test]
fn replay_drops_exactly_the_recorded_refusals() {
    let (q, _) = quotas(LimitsConfig::default());
    let now = 1_700_000_000_000;
    let refused = Refused {
        windows: vec![("c".into(), now - 10, now + 10)],
        series: vec![series("c", "m", 1, &[]).labels.series_id().0],
    };
    let mut input = Input {
        series: vec![
            series("c", "m", 0, &[now - 11, now, now + 11]),
            series("c", "m", 1, &[now]),
            // Another cluster's window was not recorded: nothing of it is dropped.
            series("d", "m", 2, &[now - 1_000_000]),
        ],
        ..Default::default()
    };
    let mut rules = Replayed {
        refused: &refused,
        quotas: &q,
    };
    restrict(&mut input, &NoHead, &mut rules, &mut Tally::default());
    let kept: Vec<_> = input
        .series
        .iter()
        .map(|s| (s.labels.get("i").unwrap().to_string(), s.samples.len()))
        .collect();
    assert_eq!(kept, [("0".to_string(), 1), ("2".to_string(), 1)]);
}

/// The remote-write path: borrowed spans are rebuilt without the refused ones, and the head's
/// sample count is what is left.
#[test]
fn borrowed_float_spans_are_rebuilt_without_the_refused() {
    let (q, _) = quotas(LimitsConfig {
        max_series_per_cluster: 1,
        ..Default::default()
    });
    let now = 1_700_000_000_000;
    let owned = [series("c", "m", 0, &[now, now + 1]), series("c", "m", 1, &[now])];
    let mut input = Input::default();
    input.floats.push_series(&owned, &[]);
    let mut live = q.live();
    let mut t = Tally::default();
    restrict(&mut input, &NoHead, &mut live, &mut t);
    assert_eq!(input.floats.series.len(), 1);
    assert_eq!(input.floats.sample_count(), 2);
    let kept = &input.floats.series[0];
    assert_eq!(input.floats.series_labels(kept)[2], ("i", "0"));
    assert_eq!(input.floats.series_samples(kept).len(), 2);
    let mut o = Outcome::default();
    o.accepted.series = 2;
    o.accepted.samples = 3;
    t.record(Kind::PromRemoteWriteV1, &mut o);
    assert_eq!((o.accepted.series, o.accepted.samples), (1, 2));
    assert_eq!((o.rejected.series, o.rejected.samples), (1, 1));
    assert!(
        o.rejected.message().contains("max_series_per_cluster"),
        "{}",
        o.rejected.message()
    );
}

use crate::decode::{Kind, Outcome};
