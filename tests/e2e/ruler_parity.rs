//! Differential test of the ruler: Tributary and a real Prometheus 2.42 (Debian's, with
//! `--web.enable-remote-write-receiver`) load the same rule file and are given the same data;
//! every sample our recording rules wrote at a time t must equal Prometheus evaluating the same
//! expression at t (its `/api/v1/query?time=t`): the same series, with the rule's `__name__` and
//! `labels:` on top and `cluster="fleet"` where the expression dropped `cluster`, and values
//! within the PromQL suite's tolerance (`values_close`). The series Prometheus's own ruler
//! recorded must have the same label sets as ours (modulo that default `cluster`).
//!
//! How both see identical samples at every t: the whole data set (3 minutes of history and 20 s
//! of future, one sample a second) goes to both in one remote-write body before any compared
//! evaluation, and only our evaluations at times after both writes were acknowledged are
//! compared; a query at t reads no sample after t, so future samples are invisible until their
//! time. The samples lie half a second off our group's evaluation phase (read from its first
//! evaluation), so no range window ever ends on a sample, where Prometheus 2.42's closed windows
//! and Prometheus 3's left-open ones (ours) legitimately differ. A rule reading an earlier rule
//! of the group is compared with the earlier expression substituted: our ruler writes its input
//! at t just before, while Prometheus's own recording of it lies on its own phase.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{
    Proc, TestServer, eventually, free_port, post_remote_write, remote_write_body, require_program, result, urlencode,
    values_close, wait_ready, write_file,
};

/// One rule: its record name, its expression, its `labels:`, and the expression Prometheus is
/// asked at t (the same one unless it reads an earlier rule's output).
struct Rule {
    record: &'static str,
    expr: &'static str,
    labels: &'static [(&'static str, &'static str)],
    compare: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        record: "diff:cluster:requests:rate30s",
        expr: "sum by (cluster) (rate(requests_total[30s]))",
        labels: &[],
        compare: "sum by (cluster) (rate(requests_total[30s]))",
    },
    Rule {
        record: "diff:job:requests:increase1m",
        expr: "sum without (instance) (increase(requests_total[1m]))",
        // Overrides the input's `job`, adds `source`.
        labels: &[("job", "rollup"), ("source", "ruler")],
        compare: "sum without (instance) (increase(requests_total[1m]))",
    },
    Rule {
        record: "diff:instance:requests:rate_region",
        expr: "rate(requests_total[30s]) * on (cluster) group_left (region) cluster_info",
        labels: &[],
        compare: "rate(requests_total[30s]) * on (cluster) group_left (region) cluster_info",
    },
    Rule {
        record: "diff:cluster:requests:rate30s:doubled",
        expr: "diff:cluster:requests:rate30s * 2",
        labels: &[],
        compare: "(sum by (cluster) (rate(requests_total[30s]))) * 2",
    },
    Rule {
        record: "diff:absent",
        expr: "absent(nonexistent_metric{cluster=\"c9\",job=\"x\"})",
        labels: &[],
        compare: "absent(nonexistent_metric{cluster=\"c9\",job=\"x\"})",
    },
    Rule {
        record: "diff:nothing",
        expr: "requests_total > 1e12",
        labels: &[],
        compare: "requests_total > 1e12",
    },
    Rule {
        record: "diff:temperature:max",
        expr: "max(temperature)",
        labels: &[("cluster", "c1")],
        compare: "max(temperature)",
    },
    Rule {
        record: "diff:temperature:avg20s",
        expr: "avg_over_time(temperature[20s]) - temperature",
        labels: &[],
        compare: "avg_over_time(temperature[20s]) - temperature",
    },
    Rule {
        record: "diff:fleet:temperature:count",
        expr: "count(temperature > 20)",
        labels: &[],
        compare: "count(temperature > 20)",
    },
];

fn rule_file() -> String {
    let mut text = String::from("groups:\n  - name: diff\n    interval: 1s\n    rules:\n");
    for r in RULES {
        text.push_str(&format!("      - record: {}\n        expr: '{}'\n", r.record, r.expr));
        if !r.labels.is_empty() {
            text.push_str("        labels:\n");
            for (k, v) in r.labels {
                text.push_str(&format!("          {k}: {v}\n"));
            }
        }
    }
    text
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// `ms` as the API's seconds, exactly.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// A series' labels (`__name__` included) and samples.
type OwnedSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// Counters (one reset), an info metric and gauges: a sample a second at `phase` ms past the
/// second, from `from` to `to` (ms).
fn dataset(from: i64, to: i64, phase: i64) -> Vec<OwnedSeries> {
    let first = from - from.rem_euclid(1000) + phase;
    let times: Vec<i64> = (0..).map(|i| first + i * 1000).take_while(|t| *t <= to).collect();
    let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let mut out = Vec::new();
    for (ci, cluster) in ["c1", "c2"].iter().enumerate() {
        for (ii, instance) in ["i1", "i2"].iter().enumerate() {
            let step = 1.5 + ci as f64 * 2.25 + ii as f64 * 0.75;
            let mut value = 0.0;
            let samples = times
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    // c2/i2 restarts (a counter reset) 150 s in.
                    if ci == 1 && ii == 1 && k == 150 {
                        value = 0.0;
                    }
                    value += step * (1.0 + (k % 7) as f64 / 10.0);
                    (*t, value)
                })
                .collect();
            out.push((
                l(&[
                    ("__name__", "requests_total"),
                    ("cluster", cluster),
                    ("instance", instance),
                    ("job", "api"),
                ]),
                samples,
            ));
        }
        let region = if ci == 0 { "eu" } else { "us" };
        out.push((
            l(&[("__name__", "cluster_info"), ("cluster", cluster), ("region", region)]),
            times.iter().map(|t| (*t, 1.0)).collect(),
        ));
        for (si, sensor) in ["a", "b"].iter().enumerate() {
            let samples = times
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    (
                        *t,
                        15.0 + ci as f64 * 4.0 + si as f64 + ((k * (si + 3)) % 11) as f64 * 0.5,
                    )
                })
                .collect();
            out.push((
                l(&[("__name__", "temperature"), ("cluster", cluster), ("sensor", sensor)]),
                samples,
            ));
        }
    }
    out
}

fn start_prometheus(dir: &std::path::Path, port: u16, rules: &std::path::Path) -> Proc {
    let prometheus = require_program("prometheus", "prometheus");
    let cfg = write_file(
        dir,
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1m\n  evaluation_interval: 1s\nrule_files: [\"{}\"]\n",
            rules.display()
        ),
    );
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    Proc(child)
}

async fn instant(base: &str, query: &str, time: &str) -> Value {
    let url = format!("{base}/api/v1/query?query={}&time={time}", urlencode(query));
    let r = reqwest::get(&url).await.expect("query");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "success", "{url}: {v}");
    v
}

/// A series' labels as a sorted map.
fn labels(metric: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(metric.clone()).expect("labels")
}

/// The group's last evaluation time (ms), from our `/metrics`, once there is one.
async fn last_evaluation(s: &TestServer, group_label: &str) -> Option<i64> {
    let text = reqwest::get(s.url("/metrics")).await.ok()?.text().await.ok()?;
    let line = text.lines().find(|l| {
        l.starts_with("tributary_ruler_rule_group_last_evaluation_timestamp_seconds{") && l.contains(group_label)
    })?;
    let secs: f64 = line.rsplit(' ').next()?.parse().ok()?;
    (secs > 0.0).then(|| (secs * 1000.0).round() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_rules_equal_prometheus_evaluating_them_on_the_same_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rules = write_file(tmp.path(), "rules.yml", &rule_file());
    let prom_port = free_port();
    let _prometheus = start_prometheus(tmp.path(), prom_port, &rules);
    let prom = format!("http://127.0.0.1:{prom_port}");
    let config = write_file(
        tmp.path(),
        "tributary.toml",
        &format!(
            "[ruler]\nrule_files = [\"{}\"]\nevaluation_interval = \"1s\"\n",
            rules.display()
        ),
    );
    let s = TestServer::start_with(&["--config", config.to_str().expect("utf-8")]).await;
    wait_ready(&format!("{prom}/-/ready")).await;

    // Our group's phase, and the data half a second off it.
    let group_label = format!("rule_group=\"{};diff\"", rules.display());
    let first = eventually(Duration::from_secs(10), "the group's first evaluation", || {
        last_evaluation(&s, &group_label)
    })
    .await;
    let phase = (first.rem_euclid(1000) + 500) % 1000;
    let now = now_ms();
    let data = dataset(now - 180_000, now + 20_000, phase);
    let body = remote_write_body(
        &data
            .iter()
            .map(|(l, samples)| {
                (
                    l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
                    samples.clone(),
                )
            })
            .collect::<Vec<_>>(),
    );
    for url in [format!("{prom}/api/v1/write"), s.url("/api/v1/write")] {
        let (status, text) = post_remote_write(&url, body.clone(), &[]).await;
        assert_eq!(status, 204, "remote write to {url}: {text}");
    }
    let written = now_ms();

    // Four evaluations after the data is in both.
    eventually(Duration::from_secs(15), "four evaluations after the write", || async {
        last_evaluation(&s, &group_label).await.filter(|t| *t > written + 3_000)
    })
    .await;
    let end = now_ms();
    // Reaches back past the write; earlier evaluations are left out below.
    let window_s = (end - written) / 1000 + 1;
    let ours = instant(
        &s.url(""),
        &format!("{{__name__=~\"diff:.+\"}}[{window_s}s]"),
        &seconds(end),
    )
    .await;
    // t -> record -> labels -> value, for our evaluations after the write.
    let mut by_time: BTreeMap<i64, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    let mut series_names = std::collections::BTreeSet::new();
    for series in result(&ours) {
        let l = labels(&series["metric"]);
        let name = l["__name__"].clone();
        for point in series["values"].as_array().expect("values") {
            let t = (point[0].as_f64().expect("time") * 1000.0).round() as i64;
            if t <= written {
                continue;
            }
            let value = point[1].as_str().expect("value").to_string();
            by_time
                .entry(t)
                .or_default()
                .entry(name.clone())
                .or_default()
                .insert(format!("{l:?}"), value);
            series_names.insert(format!("{l:?}"));
        }
    }
    assert!(by_time.len() >= 3, "too few evaluations after the write: {ours}");

    let mut failures = Vec::new();
    let mut compared = 0;
    for (t, recorded) in &by_time {
        for rule in RULES {
            let answer = instant(&prom, rule.compare, &seconds(*t)).await;
            let mut expected = BTreeMap::new();
            for sample in result(&answer) {
                let mut l = labels(&sample["metric"]);
                l.insert("__name__".into(), rule.record.into());
                for (k, v) in rule.labels {
                    l.insert(k.to_string(), v.to_string());
                }
                l.entry("cluster".into()).or_insert_with(|| "fleet".into());
                expected.insert(
                    format!("{l:?}"),
                    sample["value"][1].as_str().expect("value").to_string(),
                );
            }
            let got = recorded.get(rule.record).cloned().unwrap_or_default();
            compared += 1;
            if expected.keys().collect::<Vec<_>>() != got.keys().collect::<Vec<_>>() {
                failures.push(format!(
                    "{} at {}: series differ\n  prometheus {expected:?}\n  tributary  {got:?}",
                    rule.record,
                    seconds(*t)
                ));
                continue;
            }
            for (k, want) in &expected {
                if !values_close(want, &got[k]) {
                    failures.push(format!(
                        "{} at {}: {k} = {} (tributary) vs {want} (prometheus)",
                        rule.record,
                        seconds(*t),
                        got[k]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let nonempty: Vec<&str> = RULES
        .iter()
        .map(|r| r.record)
        .filter(|r| by_time.values().any(|m| m.contains_key(*r)))
        .collect();
    assert_eq!(
        nonempty.len(),
        RULES.len() - 1,
        "every rule but diff:nothing wrote: {nonempty:?}"
    );

    // Prometheus's own ruler recorded the same series (it has no default cluster).
    let theirs = instant(&prom, "{__name__=~\"diff:.+\"}", &seconds(now_ms())).await;
    let mut theirs: Vec<String> = result(&theirs)
        .iter()
        .map(|s| {
            let mut l = labels(&s["metric"]);
            l.entry("cluster".into()).or_insert_with(|| "fleet".into());
            format!("{l:?}")
        })
        .collect();
    theirs.sort();
    let ours: Vec<String> = series_names.into_iter().collect();
    assert_eq!(theirs, ours, "recorded series: prometheus vs tributary");
}
