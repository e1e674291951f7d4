//! Head → Parquet flush: throughput (samples/s) and, printed once, stored bytes per sample,
//! on the reference workload shape (3 clusters, node-exporter-like series, 15 s interval).
//!
//! `cargo bench --bench parquet_flush`

mod common;

use criterion::{Criterion, Throughput};
use tributary_loadgen::workload;
use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;

fn bench(c: &mut Criterion) {
    let cfg = workload::Config {
        clusters: 3,
        series_per_cluster: 10_000,
        samples_per_series: 120,
        ..Default::default()
    };
    let frozen = common::loaded_head(&cfg).freeze();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = rt
        .block_on(Storage::open(&StorageConfig::default(), dir.path()))
        .expect("storage");

    // What a flush does: the frozen block's series, decoded a file part at a time.
    let flush = || {
        rt.block_on(async {
            let mut tx = storage.transaction();
            tx.write_series(&frozen.series_inputs()).await?;
            tx.commit(None).await
        })
        .expect("write")
    };
    let first = flush();
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
    g.bench_function("head_to_parquet", |b| b.iter(flush));
    g.finish();
}

// `criterion_group!` would declare an undocumented `pub fn` (missing_docs); this is its and
// `criterion_main!`'s expansion.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
