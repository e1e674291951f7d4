//! Remote-write decode throughput on the reference workload's requests (2000 series x 1 sample,
//! node-exporter / kube-state-metrics-like labels), per sample:
//! - `snappy+decode`: decompress, walk the protobuf, validate, stamp the cluster;
//! - `snappy+decode+head`: the same plus the head append in steady state (series already known),
//!   which is the whole CPU cost of an acknowledged request except the WAL write.
//!
//! `cargo bench --bench remote_write_decode`

use criterion::{Criterion, Throughput};
use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::remote_write::v1;
use tributary_ingest::decode::{Limits, snappy_block};
use tributary_ingest::head::Head;
use tributary_ingest::head::input::NothingKnown;
use tributary_loadgen::workload;

fn bench(c: &mut Criterion) {
    let cfg = workload::Config {
        clusters: 3,
        series_per_cluster: 30_000,
        samples_per_series: 2,
        ..Default::default()
    };
    let requests: Vec<workload::EncodedRequest> = workload::requests(&cfg).collect();
    let samples: usize = requests.iter().map(|r| r.samples).sum();
    let ctx = ClusterContext::default();
    let limits = Limits {
        max_labels_per_series: 30,
        max_label_name_bytes: 1024,
        max_label_value_bytes: 2048,
    };

    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(samples as u64));
    g.sample_size(10);
    g.bench_function("snappy+decode", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &requests {
                let raw = snappy_block(&r.body, usize::MAX).expect("snappy");
                let d = v1::decode(&raw, &ctx, &limits, &NothingKnown).expect("decode");
                assert!(d.rejected.is_empty());
                n += d.batch.sample_count();
            }
            assert_eq!(n, samples);
        })
    });
    let head = Head::new();
    let append_all = |head: &Head| {
        for r in &requests {
            let raw = snappy_block(&r.body, usize::MAX).expect("snappy");
            let d = v1::decode(&raw, &ctx, &limits, head).expect("decode");
            assert_eq!(head.append(&d.batch), 0, "every sample placed");
        }
    };
    append_all(&head);
    g.bench_function("snappy+decode+head", |b| b.iter(|| append_all(&head)));
    g.finish();
}

// `criterion_group!` would declare an undocumented `pub fn` (missing_docs); this is its and
// `criterion_main!`'s expansion.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
