//! What several benches share: the reference workload decoded into a head, as ingest would.

use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::remote_write::v1;
use tributary_ingest::decode::{Limits, snappy_block};
use tributary_ingest::head::Head;
use tributary_loadgen::workload;

/// A head holding every sample of `cfg`'s workload, decoded and appended like live traffic.
pub(crate) fn loaded_head(cfg: &workload::Config) -> Head {
    let head = Head::new();
    let ctx = ClusterContext::default();
    let limits = Limits {
        max_labels_per_series: 30,
        max_label_name_bytes: 1024,
        max_label_value_bytes: 2048,
    };
    for r in workload::requests(cfg) {
        let raw = snappy_block(&r.body, usize::MAX).expect("snappy");
        let batch = v1::decode(&raw, &ctx, &limits, &head).expect("decode").batch;
        assert_eq!(head.append(&batch), 0, "every sample placed");
    }
    head
}
