//! Buffers of an ingester's Arrow answers, kept for the next answer.
//!
//! Why: the `ingest` role hands freed memory back to the system at once (the binary's allocator
//! options, for its flush peak), so every answer of a megabyte or more faulted in fresh pages
//! for its chunk bytes and again for its body, and a large select spent about a third of its
//! time in the kernel. A few buffers kept here stay resident and are reused instead.
//!
//! Bounded: at most [`KEPT`] buffers of at most [`KEPT_BYTES`] capacity each are kept; a
//! larger one is freed as usual.

use parking_lot::Mutex;

/// How many buffers are kept.
const KEPT: usize = 4;
/// The largest capacity kept (a select answer of about a million samples in chunks).
const KEPT_BYTES: usize = 8 << 20;

/// Kept buffers ([`ANSWERS`] in the server; a test makes its own).
pub(super) struct Pool {
    kept: Mutex<Vec<Vec<u8>>>,
}

/// The buffers of this process's answers.
pub(super) static ANSWERS: Pool = Pool::new();

impl Pool {
    const fn new() -> Self {
        Self {
            kept: Mutex::new(Vec::new()),
        }
    }

    /// An empty buffer of at least `size` bytes' capacity: the smallest kept one large enough
    /// (so a small answer leaves the large ones to large answers), else a new one.
    pub(super) fn buffer(&self, size: usize) -> Vec<u8> {
        let mut kept = self.kept.lock();
        let fits = kept.iter().enumerate().filter(|(_, b)| b.capacity() >= size);
        match fits.min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i) {
            Some(i) => kept.swap_remove(i),
            None => Vec::with_capacity(size),
        }
    }

    /// `buffer`'s bytes, given back to be kept when they are dropped.
    pub(super) fn bytes(&'static self, buffer: Vec<u8>) -> bytes::Bytes {
        bytes::Bytes::from_owner(Returned { buffer, pool: self })
    }
}

/// A buffer that goes back to its pool when dropped.
struct Returned {
    buffer: Vec<u8>,
    pool: &'static Pool,
}

impl AsRef<[u8]> for Returned {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.buffer);
        if buffer.capacity() == 0 || buffer.capacity() > KEPT_BYTES {
            return;
        }
        let mut kept = self.pool.kept.lock();
        if kept.len() < KEPT {
            buffer.clear();
            kept.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer given back is handed out again, cleared; at most `KEPT` are kept, and none
    /// past the size bound.
    #[test]
    fn buffers_come_back_cleared_and_bounded() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new()));
        let mut b = pool.buffer(1000);
        b.extend_from_slice(b"answer");
        let ptr = b.as_ptr();
        let bytes = pool.bytes(b);
        assert_eq!(&bytes[..], b"answer");
        drop(bytes);
        drop(pool.bytes(Vec::with_capacity(5000)));
        let again = pool.buffer(10);
        assert_eq!(again.as_ptr(), ptr, "the smallest buffer that fits");
        assert!(again.is_empty() && again.capacity() >= 1000);
        assert!(pool.buffer(2000).capacity() >= 5000);
        let huge = Vec::with_capacity(KEPT_BYTES + 1);
        drop(pool.bytes(huge));
        for _ in 0..KEPT + 2 {
            drop(pool.bytes(Vec::with_capacity(100)));
        }
        assert!(pool.kept.lock().iter().all(|b| b.capacity() <= KEPT_BYTES));
        assert_eq!(pool.kept.lock().len(), KEPT);
    }
}
