//! The thread that encodes files written a part at a time (a flush's metrics files).
//!
//! Why one thread: the allocator keeps each thread's freed pages for that thread (and, outside
//! the `ingest` role, freed memory for a second before returning it). Encodes spread over the
//! runtime's blocking pool grew a heap on each thread that took one (two in a profiled flush,
//! ~20 MiB more at its peak); on one thread each file's encode reuses the pages the one before
//! it freed. Files are encoded one at a time anyway (`store_files`).

use std::sync::LazyLock;
use std::sync::mpsc;

use crate::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// The encoder thread's queue, started on first use; it lives as long as the process.
static QUEUE: LazyLock<Option<mpsc::Sender<Job>>> = LazyLock::new(start);

fn start() -> Option<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("tributary-encode".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job();
            }
        })
        .ok()?;
    Some(tx)
}

/// Starts `encode` on the encoder thread (behind the encodes queued before it) at once; the
/// future answers its result. If the thread could not be started, it runs on the blocking pool.
pub(crate) fn run<T: Send + 'static>(
    encode: impl FnOnce() -> Result<T> + Send + 'static,
) -> impl Future<Output = Result<T>> {
    let task = |reason: String| Error::Task {
        op: "encode parquet file",
        reason,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // A panic in `encode` ends this job, not the thread: the waiter gets an error.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(encode));
        let _ = tx.send(out);
    });
    // Jobs catch their panics, so the thread only ends with the process; a send fails only
    // when it could not be started.
    let unsent = match QUEUE.as_ref() {
        Some(queue) => queue.send(job).err().map(|e| e.0),
        None => Some(job),
    };
    let fallback = unsent.map(tokio::task::spawn_blocking);
    async move {
        if let Some(handle) = fallback {
            handle.await.map_err(|e| task(e.to_string()))?;
        }
        match rx.await {
            Ok(Ok(out)) => out,
            Ok(Err(_)) => Err(task("the encoder panicked".into())),
            Err(_) => Err(task("the encoder thread stopped".into())),
        }
    }
}
