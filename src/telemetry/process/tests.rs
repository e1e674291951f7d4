use super::*;

/// A command name with spaces and parentheses does not shift the fields.
#[test]
fn stat_fields_count_after_the_command_name() {
    let text = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 123456 987654321 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    assert_eq!(
        parse_stat(text).unwrap(),
        Stat {
            cpu_ticks: 325,
            threads: 9,
            start_ticks: 123456,
            virtual_bytes: 987654321,
        }
    );
    assert!(parse_stat("4242 (x) S 1").is_err());
}

#[test]
fn status_limits_and_boot_time_parse() {
    let status = "Name:\ttributary\nVmPeak:\t  900 kB\nVmRSS:\t    5120 kB\nThreads:\t9\n";
    assert_eq!(status_kib(status, "VmRSS").unwrap(), 5120);
    assert!(status_kib(status, "VmSwap").is_err());
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
    assert_eq!(max_open_files(limits), Some(1024));
    assert_eq!(
        max_open_files("Max open files            unlimited            unlimited            files\n"),
        None
    );
    assert_eq!(
        boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n").unwrap(),
        1_700_000_000
    );
}

/// This very process: figures in sensible ranges, and every family encoded.
#[test]
fn this_process_reads_sensibly() {
    let p = ProcessStats::read().unwrap();
    assert!(p.resident_bytes > 1_000_000, "{p:?}");
    assert!(p.virtual_bytes >= p.resident_bytes, "{p:?}");
    assert!(p.open_fds >= 3 && p.threads >= 1, "{p:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        p.start_time_seconds > now - 3600.0 && p.start_time_seconds <= now + 1.0,
        "{p:?}"
    );

    let mut r = prometheus_client::registry::Registry::default();
    r.register_collector(Box::new(ProcessMetrics));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "process_threads ",
        "# TYPE process_cpu_seconds counter",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}
