//! The process's own figures under Prometheus's standard names (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), read from `/proc/self` at each scrape, as the Go and
//! Python clients do. Linux only: elsewhere nothing is registered (prometheus-client 0.24 has no
//! process collector of its own).

use std::io;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/*/stat` times: `USER_HZ`, fixed at 100 in the kernel's
/// user-space ABI on every architecture we build for (whatever the kernel's own `HZ`).
const USER_HZ: f64 = 100.0;

/// One reading of `/proc/self` (and the boot time from `/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: u64,
    /// The soft limit; `None` when unlimited.
    max_fds: Option<u64>,
    start_time_seconds: f64,
    threads: u64,
}

impl ProcessStats {
    /// Reads the figures now.
    fn read() -> io::Result<Self> {
        let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat")?)?;
        let resident_kib = status_kib(&std::fs::read_to_string("/proc/self/status")?, "VmRSS")?;
        let boot = boot_time(&std::fs::read_to_string("/proc/stat")?)?;
        Ok(Self {
            cpu_seconds: stat.cpu_ticks as f64 / USER_HZ,
            resident_bytes: resident_kib * 1024,
            virtual_bytes: stat.virtual_bytes,
            open_fds: std::fs::read_dir("/proc/self/fd")?.count() as u64,
            max_fds: max_open_files(&std::fs::read_to_string("/proc/self/limits")?),
            start_time_seconds: boot as f64 + stat.start_ticks as f64 / USER_HZ,
            threads: stat.threads,
        })
    }
}

/// The `process_*` families, read at each scrape.
#[derive(Debug, Default)]
pub(crate) struct ProcessMetrics;

impl Collector for ProcessMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = match ProcessStats::read() {
            Ok(p) => p,
            Err(e) => {
                // A scrape still answers the rest; the reason is worth a line.
                tracing::debug!(error = %e, "reading /proc/self for the process metrics");
                return Ok(());
            }
        };
        let mut gauge = |name: &str, help: &str, v: f64| -> Result<(), std::fmt::Error> {
            let e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v).encode(e)
        };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            p.resident_bytes as f64,
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            p.virtual_bytes as f64,
        )?;
        gauge("process_open_fds", "Number of open file descriptors", p.open_fds as f64)?;
        if let Some(max) = p.max_fds {
            gauge("process_max_fds", "Maximum number of open file descriptors", max as f64)?;
        }
        gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            p.start_time_seconds,
        )?;
        gauge(
            "process_threads",
            "Number of OS threads in the process",
            p.threads as f64,
        )?;
        let cpu = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(p.cpu_seconds).encode(cpu)
    }
}

/// The fields of `/proc/self/stat` we use.
#[derive(Debug, PartialEq)]
struct Stat {
    /// utime + stime, in [`USER_HZ`] ticks.
    cpu_ticks: u64,
    threads: u64,
    /// Since boot, in ticks.
    start_ticks: u64,
    virtual_bytes: u64,
}

/// Parses `/proc/<pid>/stat` (proc(5)). The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so fields are counted after its last `)`.
fn parse_stat(text: &str) -> io::Result<Stat> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/self/stat: {what}"));
    let rest = text.rsplit_once(')').ok_or_else(|| bad("no command name"))?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field n of proc(5) (1-based, counting pid and comm) is fields[n - 3].
    let field = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad(&format!("field {n} missing or not a number")))
    };
    Ok(Stat {
        cpu_ticks: field(14)? + field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
    })
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS:     1234 kB`).
fn status_kib(text: &str, key: &str) -> io::Result<u64> {
    text.lines()
        .find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            value.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/self/status: no {key}")))
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
fn boot_time(text: &str) -> io::Result<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/stat: no btime"))
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits`; `None` when unlimited.
fn max_open_files(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests;
