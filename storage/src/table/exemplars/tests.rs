use super::*;
use crate::Storage;
use crate::StorageConfig;
use crate::layout::{FileKey, HOUR_MS};
use crate::read::Source;
use crate::types::{MatchOp, STALE_NAN_BITS};
use object_store::path::Path;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn ex(timestamp: i64, value: f64, trace: &str) -> Exemplar {
    Exemplar {
        labels: Labels::from_pairs(&[("trace_id", trace), ("span_id", "00f067aa0ba902b7")]),
        value,
        timestamp,
    }
}

fn series(cluster: &str, name: &str, exemplars: Vec<Exemplar>) -> ExemplarSeries {
    ExemplarSeries {
        labels: Labels::from_pairs(&[("__name__", name), ("cluster", cluster), ("le", "0.5")]),
        exemplars,
    }
}

/// Two clusters, two series each, exemplars in two hours.
fn fleet() -> Vec<ExemplarSeries> {
    let mut out = Vec::new();
    for cluster in ["prod", "dev"] {
        for name in ["http_bucket", "rpc_total"] {
            let exemplars = (0..4)
                .map(|k| ex(T0 + k * 1_800_000 + 5, k as f64 + 0.5, &format!("{cluster}{name}{k}")))
                .collect();
            out.push(series(cluster, name, exemplars));
        }
    }
    out
}

fn sorted(mut v: Vec<ExemplarSeries>) -> Vec<ExemplarSeries> {
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    v
}

fn everything() -> Vec<Vec<Matcher>> {
    vec![vec![]]
}

async fn open(dir: &tempfile::TempDir) -> Arc<Storage> {
    Storage::open(&StorageConfig::default(), dir.path()).await.unwrap()
}

#[tokio::test]
async fn every_field_round_trips_across_clusters_and_hours() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let mut input = fleet();
    input[0].exemplars[1].value = f64::from_bits(STALE_NAN_BITS);
    input[1].exemplars[0].labels = Labels::default();
    input[1].exemplars[2].labels = Labels::from_pairs(&[("trace_id", "é \"q\"\n"), ("cluster", "inside")]);
    let summary = storage.write_exemplars(&input).await.unwrap();
    assert_eq!(summary.rows, 16);
    assert_eq!(summary.files.len(), 4, "{:?}", summary.files);
    for f in &summary.files {
        assert_eq!(FileKey::parse(&Path::from(f.as_str())).unwrap().table, Table::Exemplars);
        assert!(f.starts_with("exemplars/2026-01-01/0"), "{f}");
    }

    let source = storage.source();
    let got = source.exemplars(&everything(), TimeRange::ALL).await.unwrap();
    let want = sorted(input);
    assert_eq!(
        got.iter().map(|s| &s.labels).collect::<Vec<_>>(),
        want.iter().map(|s| &s.labels).collect::<Vec<_>>()
    );
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.exemplars.len(), w.exemplars.len());
        for (a, b) in g.exemplars.iter().zip(&w.exemplars) {
            assert_eq!(
                (a.timestamp, a.value.to_bits(), &a.labels),
                (b.timestamp, b.value.to_bits(), &b.labels)
            );
        }
    }

    // A reopened store lists the files and reads the same.
    drop(source);
    drop(storage);
    let storage = open(&dir).await;
    let again = storage.source().exemplars(&everything(), TimeRange::ALL).await.unwrap();
    assert_eq!(again.len(), 4);
    let first = again.iter().find(|s| s.labels == want[1].labels).unwrap();
    assert_eq!(first.labels.get("cluster"), Some("prod"));
    assert_eq!(first.exemplars[1].value.to_bits(), STALE_NAN_BITS);
}

#[tokio::test]
async fn selectors_and_time_select_and_other_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let input = fleet();
    let summary = storage.write_exemplars(&input).await.unwrap();
    let source = storage.source();

    let prod = Matcher::equal("cluster", "prod");
    let http = vec![prod.clone(), Matcher::equal("__name__", "http_bucket")];
    let rpc = vec![
        Matcher::new(MatchOp::RegexMatch, "__name__", "rpc.*").unwrap(),
        prod.clone(),
    ];
    // Several selectors: the union, each series once, even when two selectors match it.
    let got = source
        .exemplars(&[http.clone(), rpc, vec![prod.clone()]], TimeRange::ALL)
        .await
        .unwrap();
    assert_eq!(got, sorted(input[..2].to_vec()));
    assert!(source.exemplars(&[], TimeRange::ALL).await.unwrap().is_empty());

    // Closed range: exemplars at +30m+5ms and +60m+5ms.
    let range = TimeRange::new(T0 + 1_800_005, T0 + HOUR_MS + 5);
    let got = source.exemplars(std::slice::from_ref(&http), range).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].exemplars, input[0].exemplars[1..3].to_vec());

    // Files of other clusters and hours are never opened: deleting them changes nothing.
    for f in summary
        .files
        .iter()
        .filter(|f| f.contains("/dev/") || f.contains("/00/"))
    {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let second_hour = TimeRange::new(T0 + HOUR_MS, T0 + 2 * HOUR_MS - 1);
    let got = source.exemplars(&[vec![prod]], second_hour).await.unwrap();
    assert_eq!(got.iter().map(|s| s.exemplars.len()).sum::<usize>(), 4);
    assert!(source.exemplars(&everything(), TimeRange::ALL).await.is_err());
}

#[tokio::test]
async fn repeated_exemplars_are_returned_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let a = series(
        "prod",
        "m",
        vec![ex(T0 + 2, 1.0, "b"), ex(T0 + 1, 1.0, "a"), ex(T0 + 2, 1.0, "b")],
    );
    let b = series("prod", "m", vec![ex(T0 + 2, 1.0, "a"), ex(T0 + 1, 1.0, "a")]);
    let summary = storage.write_exemplars(&[a.clone(), b]).await.unwrap();
    assert_eq!(summary.rows, 3, "merged and deduplicated before writing");
    storage.write_exemplars(&[a]).await.unwrap();
    let got = storage.source().exemplars(&everything(), TimeRange::ALL).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].exemplars,
        vec![ex(T0 + 1, 1.0, "a"), ex(T0 + 2, 1.0, "a"), ex(T0 + 2, 1.0, "b")],
        "sorted by time, value, labels; one per (time, value, labels) across files"
    );
}

#[test]
fn exemplar_labels_json_keeps_every_label() {
    let l = Labels::from_pairs(&[("trace_id", "x"), ("__name__", "n"), ("cluster", "c")]);
    assert_eq!(
        exemplar_labels_json(&l),
        r#"{"__name__":"n","cluster":"c","trace_id":"x"}"#
    );
    assert_eq!(exemplar_labels_json(&Labels::default()), "{}");
    let mut v = vec![
        ex(2, f64::NAN, "a"),
        ex(2, f64::NAN, "a"),
        ex(1, 0.0, "b"),
        ex(1, -0.0, "b"),
    ];
    sort_dedup_exemplars(&mut v);
    assert_eq!(v.len(), 3, "same NaN bits are one exemplar; 0.0 and -0.0 are two");
    assert_eq!(v[0].value.to_bits(), (-0.0f64).to_bits());
}

#[tokio::test]
async fn parquet_answers_as_the_reference_source_does() {
    use crate::test_util::MemSource;
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let mut input = fleet();
    // A second load repeating some exemplars and adding others, as a retried flush would.
    let mut later = fleet();
    later[2].exemplars.push(ex(T0 + 2 * HOUR_MS + 1, 9.0, "late"));
    later.push(series("", "no_cluster", vec![ex(T0, 1.0, "x")]));
    storage.write_exemplars(&input).await.unwrap();
    storage.write_exemplars(&later).await.unwrap();
    input.extend(later);
    let reference = MemSource::new(vec![]).with_exemplars(input);
    let source = storage.source();

    let re = |name: &str, v: &str| Matcher::new(MatchOp::RegexMatch, name, v).unwrap();
    let selector_sets: Vec<Vec<Vec<Matcher>>> = vec![
        everything(),
        vec![vec![Matcher::equal("cluster", "")]],
        vec![
            vec![re("cluster", "p.*")],
            vec![Matcher::equal("__name__", "rpc_total")],
        ],
        vec![vec![Matcher::new(MatchOp::NotEqual, "le", "0.5").unwrap()]],
        vec![vec![re("__name__", ".*_bucket"), Matcher::equal("cluster", "dev")]],
    ];
    let ranges = [
        TimeRange::ALL,
        TimeRange::new(T0 + 5, T0 + 5),
        TimeRange::new(T0 + 6, T0 + HOUR_MS + 5),
        TimeRange::new(T0 + 2 * HOUR_MS, i64::MAX),
    ];
    for selectors in &selector_sets {
        for range in ranges {
            let want = reference.exemplars(selectors, range).await.unwrap();
            let got = source.exemplars(selectors, range).await.unwrap();
            assert_eq!(got, want, "selectors {selectors:?}, range {range:?}");
        }
    }
}
