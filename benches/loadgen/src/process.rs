//! CPU time and memory of the server under test, read from `/proc` (Linux only).
//!
//! CPU-seconds per sample is the figure that survives a shared machine: wall-clock
//! throughput moves with whatever else runs, the server's own utime+stime hardly does.

use std::path::Path;

use crate::Error;

/// A point-in-time reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// utime + stime of the process (all its threads), children excluded.
    pub cpu_seconds: f64,
    /// `VmHWM`: peak resident set size since the process started.
    pub peak_rss_bytes: u64,
    /// `VmRSS`: current resident set size.
    pub rss_bytes: u64,
}

/// `getconf CLK_TCK`, or 100 (the value on every mainstream Linux build) if that fails.
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`.
pub fn usage(pid: u32, ticks_per_second: u64) -> Result<Usage, Error> {
    let stat_path = format!("/proc/{pid}/stat");
    let stat = read(&stat_path)?;
    let (utime, stime) = parse_stat(&stat).map_err(|detail| Error::ProcFormat {
        path: stat_path,
        detail,
    })?;
    let status_path = format!("/proc/{pid}/status");
    let status = read(&status_path)?;
    let kib = |key: &str| {
        status_kib(&status, key).ok_or_else(|| Error::ProcFormat {
            path: status_path.clone(),
            detail: format!("no {key}"),
        })
    };
    Ok(Usage {
        cpu_seconds: (utime + stime) as f64 / ticks_per_second.max(1) as f64,
        peak_rss_bytes: kib("VmHWM")? * 1024,
        rss_bytes: kib("VmRSS")? * 1024,
    })
}

fn read(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(Path::new(path)).map_err(|source| Error::Proc {
        path: path.to_owned(),
        source,
    })
}

/// (utime, stime) in clock ticks: fields 14 and 15 of `proc(5)`. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Result<(u64, u64), String> {
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or("no `)` after the command name")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `fields[0]` is field 3 (state), so field N is fields[N - 3].
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .ok_or(format!("field {n} missing"))?
            .parse()
            .map_err(|e| format!("field {n}: {e}"))
    };
    Ok((field(14)?, field(15)?))
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_hostile_command_names() {
        let stat = "4242 (evil) name (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat(stat), Ok((1234, 567)));
        assert!(parse_stat("4242 (short) S 1").is_err());
    }

    #[test]
    fn parses_status_kib() {
        let status = "Name:\tx\nVmPeak:\t  20 kB\nVmHWM:\t    1536 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(1536));
        assert_eq!(status_kib(status, "VmRSS"), Some(1024));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn reads_own_usage() {
        let ticks = clock_ticks_per_second();
        assert!(ticks > 0);
        // Burn a little CPU so utime is non-zero even on a fast machine.
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert_ne!(x, 1);
        let u = usage(std::process::id(), ticks).expect("own /proc entry");
        assert!(u.cpu_seconds > 0.0);
        assert!(u.peak_rss_bytes >= u.rss_bytes && u.rss_bytes > 0);
        assert!(usage(u32::MAX, ticks).is_err());
    }
}
