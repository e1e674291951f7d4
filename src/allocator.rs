//! The process allocator: mimalloc, and how soon it hands freed memory back to the system.
//!
//! Why mimalloc: OTLP translation allocates a label set per series per request and frees them
//! in bursts, a pattern where glibc's malloc spent over half the CPU consolidating free chunks.
//! mimalloc halved OTLP metrics ingest CPU and lowered peak RSS; remote-write barely changed
//! (-3% CPU). Figures in BENCHMARKS.md ("OTLP ingest").
//!
//! Why [`EVERY_ROLE`]: mimalloc asks the kernel for transparent huge pages on its arenas, so
//! memory was faulted in and held 2 MiB at a time, where most of each huge page was free. With
//! them off, the all-in-one process's peak while ingesting the remote-write benchmark fell from
//! about 258 to 215 MiB and through a flush by about 50 MiB; `benches/compare/query.sh` ran
//! within noise of before but for one row from the head (`count by`, 9 % slower).
//!
//! Why [`INGEST`], for the `ingest` role only: mimalloc's defaults keep freed pages resident
//! for a second and commit its arenas eagerly, so a flush's short-lived buffers and the
//! requests' stayed in the resident set after they were freed. Purging at once and committing
//! on demand lowered the remote-write benchmark's peak resident memory through a flush from
//! about 450 to 265–290 MiB (260 to 210 MiB while ingesting) at unchanged CPU per sample. The
//! same options slowed `benches/compare/query.sh` 1.3–2× (a query's buffers are faulted in
//! afresh each time instead of reused), so the roles that answer queries keep mimalloc's
//! default delay. Figures in BENCHMARKS.md ("Memory through a flush").

use std::os::unix::process::CommandExt;

/// The allocator `main` installs.
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc's options as its environment variables, and the values every role runs with; an
/// operator's own value wins.
pub const EVERY_ROLE: [(&str, &str); 1] = [
    // No transparent huge pages: memory is held 4 KiB at a time (mimalloc's default asks for
    // 2 MiB pages where the kernel gives them on request).
    ("MIMALLOC_ALLOW_THP", "0"),
];

/// Options the `ingest` role runs with beside [`EVERY_ROLE`]; an operator's own value wins.
pub const INGEST: [(&str, &str); 2] = [
    // Freed memory goes back to the system at once (mimalloc's default: after 1 s).
    ("MIMALLOC_PURGE_DELAY", "0"),
    // Arena memory is committed as it is used (default: the whole arena, where Linux
    // overcommits).
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

/// Starts the process over with [`EVERY_ROLE`]'s options in its environment, and [`INGEST`]'s
/// for an `ingester`, when any is missing.
///
/// mimalloc reads its options from the environment as the process loads, before `main`, and
/// setting them afterwards takes unsafe FFI, which the workspace forbids. So a process started
/// without them replaces itself (`exec`: the same pid, arguments and open descriptors) with one
/// started with them. Call it in `main` once the role is known, before any thread starts.
/// Returns only when nothing was to be done, or with the reason `exec` failed (the process
/// then runs on with mimalloc's defaults).
pub fn start_with_options(ingester: bool) -> std::io::Result<()> {
    let ingest: &[(&str, &str)] = if ingester { &INGEST } else { &[] };
    let missing: Vec<_> = EVERY_ROLE
        .iter()
        .chain(ingest)
        .filter(|(name, _)| std::env::var_os(name).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args).envs(missing.iter().map(|(name, value)| (name, value)));
    Err(cmd.exec())
}
