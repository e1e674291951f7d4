//! Prometheus remote-write 2.0 (`io.prometheus.write.v2.Request`), as it arrives over HTTP.
//!
//! Every input is used twice, like `remote_write`: as a snappy block body (64 KiB limit, then
//! `prom_remote_write_v2::decode` as in the ingester), and as an already decompressed `Request`.
//! The context alternates between a header cluster only and a token plus a header, chosen by the
//! input's first byte, so "the token's cluster wins" is checked too. Decoded requests are held to
//! `decode_v2_and_check`: the 1.0 batch and signal invariants, no raw keys, conservation of
//! samples, histogram samples and exemplars (written + rejected = sent), created-timestamp zeros
//! only in front of a series, and determinism.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode;
use tributary_ingest_fuzz::{SMALL_LIMITS, decode_v2_and_check};

const DECOMPRESSED_LIMIT: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let ctx = ClusterContext {
        token_cluster: (data.first().is_some_and(|b| b & 1 == 1)).then(|| "fuzz-token".to_string()),
        header_cluster: Some("fuzz-cluster".to_string()),
    };
    if let Ok(raw) = decode::snappy_block(data, DECOMPRESSED_LIMIT) {
        assert!(raw.len() <= DECOMPRESSED_LIMIT, "{} bytes over the limit", raw.len());
        decode_v2_and_check(&raw, &ctx, &SMALL_LIMITS);
    }
    decode_v2_and_check(data, &ctx, &SMALL_LIMITS);
});
