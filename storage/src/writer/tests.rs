use super::*;
use crate::test_util::workload::Workload;
use crate::types::{STALE_NAN_BITS, is_stale_nan};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

fn opts() -> WriterOptions {
    WriterOptions::from_config(&StorageConfig::default())
}

fn s(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
    Series::new(
        Labels::from_pairs(pairs),
        samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
    )
}

fn read_all(bytes: &Bytes) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow_select_concat(&batches)
}

fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    assert_eq!(batches.len(), 1, "small test files decode in one batch");
    batches[0].clone()
}

const H: i64 = HOUR_MS;

/// Every data page of the chunk is dictionary encoded (no fallback to plain).
fn all_dictionary(c: &parquet::file::metadata::ColumnChunkMetaData) -> bool {
    c.dictionary_page_offset().is_some()
        && c.page_encoding_stats_mask()
            .is_some_and(|m| m.is_only(Encoding::RLE_DICTIONARY))
}

#[test]
fn files_split_by_hour_and_cluster_and_rows_are_sorted() {
    let input = vec![
        s(
            &[("__name__", "b"), ("cluster", "x"), ("k", "2")],
            &[(10, 1.0), (H + 5, 2.0)],
        ),
        s(
            &[("__name__", "a"), ("cluster", "x"), ("k", "9")],
            &[(20, 3.0), (30, 4.0)],
        ),
        s(&[("__name__", "a"), ("cluster", "x"), ("k", "1")], &[(40, 5.0)]),
        s(&[("__name__", "a"), ("cluster", "y")], &[(50, 6.0)]),
        s(&[("__name__", "a")], &[(60, 7.0)]),
        s(&[("__name__", "empty"), ("cluster", "x")], &[]),
    ];
    let files = encode_metrics(&input, &opts()).unwrap();
    let keys: Vec<(Hour, &str, i64, i64, u64)> = files
        .iter()
        .map(|f| {
            (
                f.key.hour,
                f.key.cluster.as_str(),
                f.key.min_ts,
                f.key.max_ts,
                f.key.rows,
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            (Hour(0), "", 60, 60, 1),
            (Hour(0), "x", 10, 40, 4),
            (Hour(0), "y", 50, 50, 1),
            (Hour(1), "x", H + 5, H + 5, 1)
        ]
    );

    let batch = read_all(&files[1].bytes);
    let metric = batch.column(col::METRIC).as_dictionary::<Int32Type>();
    let labels = batch.column(col::LABELS).as_dictionary::<Int32Type>();
    let ts = batch.column(col::TIMESTAMP).as_primitive::<TimestampMillisecondType>();
    let text = |d: &DictionaryArray<Int32Type>, i: usize| {
        d.values()
            .as_string::<i32>()
            .value(d.keys().value(i) as usize)
            .to_string()
    };
    let rows: Vec<(String, String, i64)> = (0..batch.num_rows())
        .map(|i| (text(metric, i), text(labels, i), ts.value(i)))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("a".into(), r#"{"k":"1"}"#.into(), 40),
            ("a".into(), r#"{"k":"9"}"#.into(), 20),
            ("a".into(), r#"{"k":"9"}"#.into(), 30),
            ("b".into(), r#"{"k":"2"}"#.into(), 10),
        ]
    );
    let ids = batch.column(col::SERIES_ID).as_primitive::<UInt64Type>();
    assert_eq!(ids.value(0), input[2].labels.series_id().0);
    assert_eq!(ts.timezone(), Some("UTC"));
}

#[test]
fn repeated_series_merge_with_the_later_sample_winning_and_bits_survive() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let payload_nan = f64::from_bits(0x7ff8_0000_0000_0042);
    let l = [("__name__", "m"), ("cluster", "c")];
    let input = vec![
        s(&l, &[(1, 1.0), (2, 1.0), (3, 1.0)]),
        s(&l, &[(3, stale), (2, payload_nan), (0, -0.0)]),
    ];
    let files = encode_metrics(&input, &opts()).unwrap();
    assert_eq!(files.len(), 1);
    let batch = read_all(&files[0].bytes);
    let ts = batch.column(col::TIMESTAMP).as_primitive::<TimestampMillisecondType>();
    let vs = batch.column(col::VALUE).as_primitive::<Float64Type>();
    assert_eq!(ts.values().to_vec(), vec![0, 1, 2, 3]);
    let bits: Vec<u64> = vs.values().iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        bits,
        vec![
            (-0.0f64).to_bits(),
            1.0f64.to_bits(),
            payload_nan.to_bits(),
            STALE_NAN_BITS
        ]
    );
    assert!(is_stale_nan(vs.value(3)));
}

#[test]
fn timestamps_outside_keyable_years_fail_the_write() {
    let input = vec![s(&[("__name__", "m")], &[(i64::MAX, 1.0)])];
    assert!(matches!(
        encode_metrics(&input, &opts()),
        Err(Error::InvalidData { .. })
    ));
    assert!(matches!(
        WriterOptions {
            zstd_level: 99,
            ..opts()
        }
        .properties(),
        Err(Error::InvalidData { .. })
    ));
}

#[test]
fn files_carry_the_promised_encodings_statistics_and_page_index() {
    let series = Workload {
        nodes: 2,
        samples: 60,
        ..Workload::default()
    }
    .series();
    let files = encode_metrics(
        &series,
        &WriterOptions {
            row_group_rows: 10_000,
            page_rows: 2_000,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(files.len(), 1);
    let reader = SerializedFileReader::new(files[0].bytes.clone()).unwrap();
    let md = reader.metadata();
    assert!(md.num_row_groups() > 1, "row_group_rows is honoured");
    for rg in md.row_groups() {
        assert_eq!(rg.sorting_columns().map(|c| c.len()), Some(4));
        for (i, name) in [
            (col::CLUSTER, "cluster"),
            (col::METRIC, "metric"),
            (col::LABELS, "labels"),
        ] {
            let c = rg.column(i);
            let enc = format!("{:?}", c.encodings().collect::<Vec<_>>());
            assert!(all_dictionary(c), "{name} must be dictionary encoded, got {enc}");
            assert!(c.statistics().is_some(), "{name} has statistics");
        }
        let ts = format!("{:?}", rg.column(col::TIMESTAMP).encodings().collect::<Vec<_>>());
        assert!(ts.contains("DELTA_BINARY_PACKED"), "timestamp encodings {ts}");
        let vs = format!("{:?}", rg.column(col::VALUE).encodings().collect::<Vec<_>>());
        assert!(vs.contains("BYTE_STREAM_SPLIT"), "value encodings {vs}");
        assert!(format!("{:?}", rg.column(col::VALUE).compression()).contains("ZSTD"));
        assert!(
            rg.column(col::TIMESTAMP).column_index_offset().is_some(),
            "column index written"
        );
        assert!(
            rg.column(col::TIMESTAMP).offset_index_offset().is_some(),
            "offset index written"
        );
    }
}

#[test]
fn thirty_thousand_label_sets_stay_dictionary_encoded() {
    // One row group with 30k distinct, realistic-length label sets.
    let series: Vec<Series> = (0..30_000)
        .map(|i| {
            let pod = format!("api-server-7d9f8c6b5-{i:05}");
            let labels = [
                ("__name__", "http_requests_total"),
                ("cluster", "c"),
                ("namespace", "production-frontend"),
                ("pod", pod.as_str()),
                ("service", "api-server-public-endpoint"),
            ];
            s(&labels, &[(1_000, i as f64)])
        })
        .collect();
    let files = encode_metrics(&series, &opts()).unwrap();
    let reader = SerializedFileReader::new(files[0].bytes.clone()).unwrap();
    let md = reader.metadata();
    assert_eq!(md.num_row_groups(), 1);
    let labels = md.row_group(0).column(col::LABELS);
    assert!(all_dictionary(labels), "labels fell back to plain encoding");
    assert!(
        all_dictionary(md.row_group(0).column(col::SERIES_ID)),
        "series_id fell back to plain encoding"
    );
}

/// Bytes per sample on node-exporter-like data, per zstd level and flush window.
/// Run with `--nocapture` to see the table; the assertion guards against size regressions.
#[test]
fn bytes_per_sample_on_node_exporter_like_data() {
    let one_hour = Workload {
        nodes: 16,
        samples: 240,
        ..Workload::default()
    }
    .series();
    let samples: usize = one_hour.iter().map(|s| s.samples.len()).sum();
    let size = |series: &[Series], level: i32| -> usize {
        let files = encode_metrics(
            series,
            &WriterOptions {
                zstd_level: level,
                ..opts()
            },
        )
        .unwrap();
        files.iter().map(|f| f.bytes.len()).sum()
    };
    eprintln!(
        "node-exporter-like: {} series, {samples} samples (1 h @ 15 s)",
        one_hour.len()
    );
    let mut default_bps = 0.0;
    for level in [1, 3, 6, 9] {
        let bps = size(&one_hour, level) as f64 / samples as f64;
        eprintln!("  zstd {level}: {bps:.3} bytes/sample");
        if level == opts().zstd_level {
            default_bps = bps;
        }
    }
    let files = encode_metrics(&one_hour, &opts()).unwrap();
    let reader = SerializedFileReader::new(files[0].bytes.clone()).unwrap();
    let schema = schema::metrics_schema();
    for (i, field) in schema.fields().iter().enumerate() {
        let bytes: i64 = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|rg| rg.column(i).compressed_size())
            .sum();
        eprintln!(
            "    {:<10} {:.3} bytes/sample",
            field.name(),
            bytes as f64 / samples as f64
        );
    }
    // A head flushing every 10 minutes writes 40-sample series.
    let ten_min: Vec<Series> = one_hour
        .iter()
        .map(|s| Series::new(s.labels.clone(), s.samples[..40].to_vec()))
        .collect();
    let bps10 = size(&ten_min, opts().zstd_level) as f64 / (ten_min.len() * 40) as f64;
    eprintln!("  10-minute files, zstd {}: {bps10:.3} bytes/sample", opts().zstd_level);
    assert!(default_bps < 1.5, "1 h files: {default_bps:.3} bytes/sample");
    assert!(bps10 < 3.0, "10 min files: {bps10:.3} bytes/sample");
}

/// Encodes written a part at a time all run on one thread, in the order they were started
/// (each started at once, before its future is polled); one that panics answers an error and
/// the next runs on the same thread.
#[tokio::test]
async fn part_encodes_run_one_after_another_on_one_thread() {
    let thread = || std::thread::current().id();
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    // The first encode waits for the gate: the second is queued behind it, not run beside it.
    let first = encode_thread::run(move || {
        gate_rx.recv().unwrap();
        Ok((thread(), std::time::Instant::now()))
    });
    let second = encode_thread::run(move || Ok((thread(), std::time::Instant::now())));
    let panics = encode_thread::run(|| -> Result<()> { panic!("an encoder bug") });
    let after = encode_thread::run(move || Ok(thread()));
    gate_tx.send(()).unwrap();
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(a.0, b.0, "both on the encoder thread");
    assert_ne!(a.0, thread(), "not on the caller's");
    assert!(a.1 <= b.1, "the second ran after the first");
    let err = panics.await.unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert_eq!(after.await.unwrap(), a.0, "the thread outlives a panicking encode");
}
