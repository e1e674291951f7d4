//! Head → Parquet flush: throughput (samples/s) and, printed once, stored bytes per sample,
//! on the reference workload shape (3 clusters, node-exporter-like series, 15 s interval).
//!
//! `cargo bench --bench parquet_flush`

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::{prom_remote_write, snappy_block};
use tributary_ingest::head::{Frozen, Head};
use tributary_loadgen::workload;
use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;

fn frozen_head(cfg: &workload::Config) -> Arc<Frozen> {
    let head = Head::new();
    let ctx = ClusterContext::default();
    let limits = prom_remote_write::Limits {
        max_labels_per_series: 30,
        max_label_name_bytes: 1024,
        max_label_value_bytes: 2048,
    };
    for r in workload::requests(cfg) {
        let raw = snappy_block(&r.body, usize::MAX).expect("snappy");
        let batch = prom_remote_write::decode(&raw, &ctx, &limits, &head)
            .expect("decode")
            .batch;
        assert_eq!(head.append(&batch), 0, "every sample placed");
    }
    head.freeze()
}

fn bench(c: &mut Criterion) {
    let cfg = workload::Config {
        clusters: 3,
        series_per_cluster: 10_000,
        samples_per_series: 120,
        ..Default::default()
    };
    let frozen = frozen_head(&cfg);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = rt
        .block_on(Storage::open(&StorageConfig::default(), dir.path()))
        .expect("storage");

    let first = rt.block_on(storage.write_metrics(&frozen.series)).expect("write");
    eprintln!(
        "parquet_flush: {} samples -> {} bytes in {} files = {:.3} bytes/sample",
        frozen.samples,
        first.bytes,
        first.files.len(),
        first.bytes as f64 / frozen.samples as f64
    );

    let mut g = c.benchmark_group("flush");
    g.throughput(Throughput::Elements(frozen.samples as u64));
    g.sample_size(10);
    g.bench_function("head_to_parquet", |b| {
        b.iter(|| rt.block_on(storage.write_metrics(&frozen.series)).expect("write"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
