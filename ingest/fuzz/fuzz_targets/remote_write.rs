//! Prometheus remote-write, as it arrives over HTTP.
//!
//! Every input is used twice:
//! - as a snappy block body: `decode::snappy_block` with a 64 KiB limit must never hand back more
//!   than the limit, and what it accepts must survive a compress/decompress round trip; the
//!   decompressed bytes then go through `prom_remote_write::decode` as in the ingester;
//! - as an already decompressed `WriteRequest`, straight into `prom_remote_write::decode`.
//!
//! The context has only a header cluster, like an unauthenticated agent sending
//! `X-Tributary-Cluster`. Accepted batches are checked by `decode_and_check`: sorted unique label
//! names, `__name__` and `cluster` present, limits, storable timestamps, sample conservation, and
//! the known-series fast path (a second decode with every accepted raw key known) agreeing with the
//! full path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode;
use tributary_ingest_fuzz::{SMALL_LIMITS, decode_and_check};

const DECOMPRESSED_LIMIT: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let ctx = ClusterContext {
        token_cluster: None,
        header_cluster: Some("fuzz-cluster".to_string()),
    };
    if let Ok(raw) = decode::snappy_block(data, DECOMPRESSED_LIMIT) {
        assert!(raw.len() <= DECOMPRESSED_LIMIT, "{} bytes over the limit", raw.len());
        let again = snap::raw::Encoder::new().compress_vec(&raw).expect("64 KiB compresses");
        assert_eq!(
            decode::snappy_block(&again, DECOMPRESSED_LIMIT).expect("own output"),
            raw
        );
        decode_and_check(&raw, &ctx, &SMALL_LIMITS);
    }
    decode_and_check(data, &ctx, &SMALL_LIMITS);
});
