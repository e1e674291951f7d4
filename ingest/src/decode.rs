//! The edge: wire bytes in, Tributary's domain types out.
//!
//! Protocol types never travel further than this module. Decoders validate everything a sender
//! controls and report every rejected series with a reason, while keeping the valid ones
//! (a remote-write 400 is not retried, so valid data beside a bad series must still be stored).

pub mod loki;
pub mod otlp;
pub mod otlp_logs;
pub mod otlp_metrics;
pub mod prom_remote_write;
pub mod prom_remote_write_v2;
pub mod wire;

use crate::error::{Error, Result};

/// Snappy *block* decompression (what remote-write uses), refusing to allocate more than `limit`.
pub fn snappy_block(body: &[u8], limit: usize) -> Result<Vec<u8>> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Error::InvalidInput(format!("body is not snappy block-compressed: {e}")))?;
    if len > limit {
        return Err(Error::PayloadTooLarge {
            what: "decompressed body",
            actual: len,
            limit,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Error::InvalidInput(format!("body is not snappy block-compressed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_rejects_garbage_and_bombs() {
        assert!(matches!(
            snappy_block(b"\xff\xff\xff\xff\xff\xff", 1 << 20),
            Err(Error::InvalidInput(_))
        ));
        let big = snap::raw::Encoder::new().compress_vec(&vec![0u8; 1 << 20]).unwrap();
        assert!(matches!(snappy_block(&big, 1024), Err(Error::PayloadTooLarge { .. })));
        assert_eq!(snappy_block(&big, 2 << 20).unwrap().len(), 1 << 20);
    }
}
