//! A WAL record payload read back from disk, as `Ingester` replays it.
//!
//! `record::decode` must never panic; a version-2 record it accepts must re-encode to exactly the
//! same bytes (the format has one encoding per record), and a version-1 record must read back the
//! same after re-encoding as version 2. An accepted Prometheus record then takes the replay path:
//! snappy, then `remote_write::v1::decode` (1.0) or `remote_write::v2::decode` (2.0) with the
//! record's own cluster context (token and header, both fuzzed) and unbounded limits, and the result
//! is held to `decode_and_check`'s / `decode_v2_and_check`'s invariants — including "the token's
//! cluster wins". OTLP and Loki records are checked for the round trip only (their decoders have
//! their own tests).
//!
//! One deliberate difference from replay: the snappy limit. Replay passes `usize::MAX`, so a record
//! whose snappy header claims ~4 GiB makes it allocate that much before failing (see
//! `corpus/wal_record/oom-*` and the README). Here the limit is what the body can possibly expand to,
//! so the target keeps finding other bugs instead of stopping on that one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_ingest::decode;
use tributary_ingest::record::{self, Kind};
use tributary_ingest_fuzz::{UNBOUNDED_LIMITS, decode_and_check, decode_v2_and_check};

/// Snappy's densest element, a 3-byte copy of 64 bytes, bounds how far a valid body can expand.
const SNAPPY_MAX_EXPANSION: usize = 22;

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = record::decode(data) else {
        return;
    };
    match &rec.translation {
        // Version 2: one encoding per record.
        Some(translation) => {
            let encoded = record::encode(rec.kind, &rec.ctx, translation, &rec.refused, &rec.replicas, rec.body)
                .expect("decoded lengths fit in u16");
            assert_eq!(&encoded[..], data, "decode/encode is not a round trip");
        }
        // Version 1 (no settings): re-encoding writes version 2, which must read back the same.
        None => {
            let encoded = record::encode(
                rec.kind,
                &rec.ctx,
                &Default::default(),
                &rec.refused,
                &rec.replicas,
                rec.body,
            )
            .expect("decoded lengths fit in u16");
            let again = record::decode(&encoded).expect("own encoding");
            assert_eq!((again.kind, &again.ctx, again.body), (rec.kind, &rec.ctx, rec.body));
        }
    }
    let limit = rec.body.len().saturating_mul(SNAPPY_MAX_EXPANSION);
    match rec.kind {
        Kind::PromRemoteWriteV1 => {
            if let Ok(raw) = decode::snappy_block(rec.body, limit) {
                decode_and_check(&raw, &rec.ctx, &UNBOUNDED_LIMITS);
            }
        }
        Kind::PromRemoteWriteV2 => {
            if let Ok(raw) = decode::snappy_block(rec.body, limit) {
                decode_v2_and_check(&raw, &rec.ctx, &UNBOUNDED_LIMITS);
            }
        }
        _ => {}
    }
});
