//! The compressions request bodies arrive in: snappy block (remote-write, Loki protobuf, and
//! every WAL record body) and gzip (OTLP/HTTP, Loki JSON). Both refuse to produce more than a
//! limit before allocating it, so a small bomb cannot take the process down.

use std::io::Read;

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

/// Snappy block compression, for WAL record bodies that did not arrive as one.
pub(crate) fn snappy_compress(raw: &[u8]) -> Result<Vec<u8>> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .map_err(|e| Error::InvalidInput(format!("cannot compress request for the WAL: {e}")))
}

/// Gzip decompression that refuses to produce more than `limit` bytes, so a small bomb cannot
/// allocate gigabytes before we notice.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error| Error::InvalidInput(format!("body is not valid gzip: {e}"));
    let first = body.len().saturating_mul(4).min(limit);
    let mut out = Vec::with_capacity(first);
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    (&mut reader).take(first as u64).read_to_end(&mut out).map_err(bad)?;
    if out.len() == first {
        // More may follow: grow once to the limit (pages are only touched as they are written)
        // rather than doubling, which at the limit would hold the old buffer and a new one of
        // twice its size.
        // Only for sane limits: a huge configured one must not reserve that much address space.
        let rest = limit.saturating_add(1).saturating_sub(out.len());
        if rest <= 1 << 30 {
            out.reserve_exact(rest);
        }
        reader.read_to_end(&mut out).map_err(bad)?;
    }
    if out.len() > limit {
        return Err(Error::PayloadTooLarge {
            what: "decompressed body",
            actual: out.len(),
            limit,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_limits_output() {
        let bomb = gzip(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 64 << 10);
        assert!(matches!(gunzip(&bomb, 1 << 20), Err(Error::PayloadTooLarge { .. })));
        assert_eq!(gunzip(&bomb, 8 << 20).unwrap().len(), 8 << 20);
        assert!(matches!(gunzip(b"not gzip", 1 << 20), Err(Error::InvalidInput(_))));
    }

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
