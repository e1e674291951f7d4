//! The compressions request bodies arrive in: snappy block (remote-write, Loki protobuf, and
//! every WAL record body) and gzip (OTLP/HTTP, Loki JSON). Both refuse to produce more than a
//! limit before allocating it, so a small bomb cannot take the process down.

use std::io::Read;

use bytes::Bytes;

use crate::error::{Error, Result};

/// Snappy *block* decompression (what remote-write uses), refusing to allocate more than `limit`.
pub fn snappy_block(body: &[u8], limit: usize) -> Result<Vec<u8>> {
    snappy_len(body, limit)?;
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Error::InvalidInput(format!("body is not snappy block-compressed: {e}")))
}

/// The decompressed length of a snappy block, refused past `limit`.
fn snappy_len(body: &[u8], limit: usize) -> Result<usize> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Error::InvalidInput(format!("body is not snappy block-compressed: {e}")))?;
    if len > limit {
        return Err(Error::PayloadTooLarge {
            what: "decompressed body",
            actual: len,
            limit,
        });
    }
    Ok(len)
}

/// [`snappy_block`] into a buffer an earlier request used: the buffer goes back to a small pool
/// when the last reference to the returned bytes drops. A remote-write body decompresses to
/// about 0.6 MB; a fresh buffer per request had its pages faulted in and zeroed by the kernel
/// every time (issue 20's profile: ~6 % of remote-write CPU).
pub(crate) fn snappy_block_reused(body: &[u8], limit: usize) -> Result<Bytes> {
    let len = snappy_len(body, limit)?;
    let mut buf = POOL.lock().pop().unwrap_or_default();
    // A kept buffer keeps its length: only growth is zero-filled, and the decoder overwrites
    // the first `len` bytes.
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let written = snap::raw::Decoder::new()
        .decompress(body, &mut buf[..len])
        .map_err(|e| Error::InvalidInput(format!("body is not snappy block-compressed: {e}")))?;
    Ok(Bytes::from_owner(Reused { buf, len: written }))
}

/// Buffers [`snappy_block_reused`] keeps: about as many as requests in flight, none over
/// [`REUSED_MAX_BYTES`] (a rare huge body's buffer is freed, not kept).
static POOL: parking_lot::Mutex<Vec<Vec<u8>>> = parking_lot::const_mutex(Vec::new());
const REUSED_BUFFERS: usize = 8;
const REUSED_MAX_BYTES: usize = 4 << 20;

/// A pooled buffer holding `len` bytes of a body; back to the pool when dropped.
struct Reused {
    buf: Vec<u8>,
    len: usize,
}

impl AsRef<[u8]> for Reused {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Reused {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= REUSED_MAX_BYTES {
            let mut pool = POOL.lock();
            if pool.len() < REUSED_BUFFERS {
                pool.push(buf);
            }
        }
    }
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
        assert!(matches!(
            snappy_block_reused(&big, 1024),
            Err(Error::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn a_reused_buffer_holds_exactly_the_next_body() {
        let long: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let short = b"a shorter body".repeat(100);
        let first = snappy_block_reused(&snap::raw::Encoder::new().compress_vec(&long).unwrap(), 1 << 20).unwrap();
        assert_eq!(&first[..], &long[..]);
        let at = first.as_ptr();
        drop(first);
        // The long body's buffer, with its stale bytes past the short body's end, serves again.
        let second = snappy_block_reused(&snap::raw::Encoder::new().compress_vec(&short).unwrap(), 1 << 20).unwrap();
        assert_eq!(second.as_ptr(), at, "the buffer was reused");
        assert_eq!(&second[..], &short[..]);
        assert!(matches!(
            snappy_block_reused(b"\xff\xff\xff\xff\xff\xff", 1 << 20),
            Err(Error::InvalidInput(_))
        ));
    }
}
