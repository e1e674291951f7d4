//! Language runtime instrumentation every pod exports besides its role's metrics: the Go
//! runtime, the JVM, and CPython.

use super::histogram::{DEFAULT_BOUNDS, GC_BOUNDS, HistShape};
use super::{Builder, Kind, Spec};
use crate::otlp::catalog::{kv, kv_bool};

impl Builder {
    /// The Go runtime instrumentation's memory, goroutine and scheduler metrics.
    pub(crate) fn go_runtime(&mut self) {
        let s = self.scope("go.opentelemetry.io/contrib/instrumentation/runtime", "0.54.0");
        let heap = self.rng.range_f64(20e6, 400e6);
        let walk = |lo: f64, hi: f64| Spec::Walk {
            lo,
            hi,
            step: (hi - lo) * 0.1,
        };
        self.metric(
            s,
            "go.memory.used",
            "Memory used by the Go runtime.",
            "By",
            Kind::UpDown,
            true,
            vec![
                (vec![kv("go.memory.type", "stack")], walk(400e3, 2e6)),
                (vec![kv("go.memory.type", "other")], walk(heap * 0.6, heap * 1.4)),
            ],
        );
        let memory = [
            (
                "go.memory.limit",
                "Go runtime memory limit configured by the user, if a limit exists.",
                "By",
                Spec::Constant(536_870_912.0),
            ),
            (
                "go.memory.gc.goal",
                "Heap size target for the end of the GC cycle.",
                "By",
                walk(heap, heap * 2.0),
            ),
            (
                "go.goroutine.count",
                "Count of live goroutines.",
                "{goroutine}",
                walk(20.0, 400.0),
            ),
            (
                "go.processor.limit",
                "The number of OS threads that can execute user-level Go code simultaneously.",
                "{thread}",
                Spec::Constant(2.0),
            ),
            (
                "go.config.gogc",
                "Heap size target percentage configured by the user, otherwise 100.",
                "%",
                Spec::Constant(100.0),
            ),
        ];
        for (name, description, unit, spec) in memory {
            self.metric(s, name, description, unit, Kind::UpDown, true, vec![(vec![], spec)]);
        }
        let alloc_rate = self.rng.range_f64(1e5, 5e7);
        self.metric(
            s,
            "go.memory.allocated",
            "Memory allocated to the heap by the application.",
            "By",
            Kind::Counter,
            true,
            vec![(vec![], Spec::Count(alloc_rate))],
        );
        self.metric(
            s,
            "go.memory.allocations",
            "Count of allocations to the heap by the application.",
            "{allocation}",
            Kind::Counter,
            true,
            vec![(vec![], Spec::Count(alloc_rate / 180.0))],
        );
        let schedules = self.rng.range_f64(50.0, 3000.0);
        self.metric(
            s,
            "go.schedule.duration",
            "The time goroutines have spent in the scheduler in a runnable state before actually running.",
            "s",
            Kind::Histogram(DEFAULT_BOUNDS),
            false,
            vec![(
                vec![],
                Spec::Observe(
                    schedules,
                    HistShape {
                        bounds: DEFAULT_BOUNDS,
                        median: 2e-6,
                        sigma: 1.5,
                        zeros: 0.3,
                    },
                ),
            )],
        );
    }

    /// The Java agent's JVM runtime metrics: memory pools, GC, threads, classes and CPU.
    pub(crate) fn jvm(&mut self) {
        let s = self.scope("io.opentelemetry.runtime-telemetry-java8", "2.10.0-alpha");
        const POOLS: &[(&str, &str, f64, bool)] = &[
            ("G1 Eden Space", "heap", 300e6, false),
            ("G1 Old Gen", "heap", 900e6, true),
            ("G1 Survivor Space", "heap", 30e6, false),
            ("Metaspace", "non_heap", 120e6, false),
            ("CodeHeap 'non-nmethods'", "non_heap", 3e6, true),
            ("CodeHeap 'profiled nmethods'", "non_heap", 30e6, true),
            ("CodeHeap 'non-profiled nmethods'", "non_heap", 20e6, true),
            ("Compressed Class Space", "non_heap", 15e6, true),
        ];
        let pool_attrs = |name: &str, ty: &str| vec![kv("jvm.memory.pool.name", name), kv("jvm.memory.type", ty)];
        let walk = |v: f64| Spec::Walk {
            lo: v * 0.3,
            hi: v,
            step: v * 0.08,
        };
        let used = POOLS.iter().map(|&(n, t, v, _)| (pool_attrs(n, t), walk(v))).collect();
        self.metric(
            s,
            "jvm.memory.used",
            "Measure of memory used.",
            "By",
            Kind::UpDown,
            true,
            used,
        );
        let committed = POOLS
            .iter()
            .map(|&(n, t, v, _)| (pool_attrs(n, t), Spec::Constant(v * 1.1)))
            .collect();
        self.metric(
            s,
            "jvm.memory.committed",
            "Measure of memory committed.",
            "By",
            Kind::UpDown,
            true,
            committed,
        );
        let limit = POOLS
            .iter()
            .filter(|p| p.3)
            .map(|&(n, t, v, _)| (pool_attrs(n, t), Spec::Constant(v * 2.0)))
            .collect();
        self.metric(
            s,
            "jvm.memory.limit",
            "Measure of max obtainable memory.",
            "By",
            Kind::UpDown,
            true,
            limit,
        );
        let after_gc = POOLS
            .iter()
            .filter(|p| p.1 == "heap")
            .map(|&(n, t, v, _)| (pool_attrs(n, t), walk(v * 0.4)))
            .collect();
        self.metric(
            s,
            "jvm.memory.used_after_last_gc",
            "Measure of memory used, as measured after the most recent garbage collection event on this pool.",
            "By",
            Kind::UpDown,
            true,
            after_gc,
        );
        let gc = |action: &str, name: &str| vec![kv("jvm.gc.action", action), kv("jvm.gc.name", name)];
        let gc_shape = |median| HistShape {
            bounds: GC_BOUNDS,
            median,
            sigma: 0.7,
            zeros: 0.0,
        };
        self.metric(
            s,
            "jvm.gc.duration",
            "Duration of JVM garbage collection actions.",
            "s",
            Kind::Histogram(GC_BOUNDS),
            false,
            vec![
                (
                    gc("end of minor GC", "G1 Young Generation"),
                    Spec::Observe(0.2, gc_shape(0.012)),
                ),
                (
                    gc("end of major GC", "G1 Old Generation"),
                    Spec::Observe(0.001, gc_shape(0.4)),
                ),
            ],
        );
        let threads = [
            (true, "runnable", 12.0),
            (true, "waiting", 20.0),
            (true, "timed_waiting", 15.0),
            (false, "runnable", 3.0),
            (false, "waiting", 2.0),
            (false, "timed_waiting", 4.0),
            (false, "blocked", 1.0),
        ]
        .iter()
        .map(|&(daemon, state, n)| {
            (
                vec![kv_bool("jvm.thread.daemon", daemon), kv("jvm.thread.state", state)],
                Spec::Walk {
                    lo: 0.0,
                    hi: n * 2.0,
                    step: 2.0,
                },
            )
        })
        .collect();
        self.metric(
            s,
            "jvm.thread.count",
            "Number of executing platform threads.",
            "{thread}",
            Kind::UpDown,
            true,
            threads,
        );
        let classes = self.rng.range_f64(12_000.0, 30_000.0);
        self.metric(
            s,
            "jvm.class.loaded",
            "Number of classes loaded since JVM start.",
            "{class}",
            Kind::Counter,
            true,
            vec![(vec![], Spec::Count(0.02))],
        );
        self.metric(
            s,
            "jvm.class.unloaded",
            "Number of classes unloaded since JVM start.",
            "{class}",
            Kind::Counter,
            true,
            vec![(vec![], Spec::Count(0.001))],
        );
        self.metric(
            s,
            "jvm.class.count",
            "Number of classes currently loaded.",
            "{class}",
            Kind::UpDown,
            true,
            vec![(
                vec![],
                Spec::Walk {
                    lo: classes,
                    hi: classes + 50.0,
                    step: 2.0,
                },
            )],
        );
        let cpu = self.rng.range_f64(0.01, 1.2);
        self.metric(
            s,
            "jvm.cpu.time",
            "CPU time used by the process as reported by the JVM.",
            "s",
            Kind::Counter,
            false,
            vec![(vec![], Spec::Seconds(cpu))],
        );
        self.metric(
            s,
            "jvm.cpu.count",
            "Number of processors available to the Java virtual machine.",
            "{cpu}",
            Kind::UpDown,
            true,
            vec![(vec![], Spec::Constant(2.0))],
        );
        self.metric(
            s,
            "jvm.cpu.recent_utilization",
            "Recent CPU utilization for the process as reported by the JVM.",
            "1",
            Kind::Gauge,
            false,
            vec![(
                vec![],
                Spec::Walk {
                    lo: 0.0,
                    hi: (cpu / 2.0).min(1.0),
                    step: 0.05,
                },
            )],
        );
    }

    /// CPython's `system_metrics` runtime metrics: memory, CPU, GC, threads, context switches.
    pub(crate) fn cpython(&mut self) {
        let s = self.scope("opentelemetry.instrumentation.system_metrics", "0.48b0");
        let rss = self.rng.range_f64(60e6, 600e6);
        let walk = |lo: f64, hi: f64| Spec::Walk {
            lo,
            hi,
            step: (hi - lo) * 0.05,
        };
        self.metric(
            s,
            "process.runtime.cpython.memory",
            "Runtime cpython memory",
            "By",
            Kind::UpDown,
            true,
            vec![
                (vec![kv("type", "rss")], walk(rss * 0.9, rss)),
                (vec![kv("type", "vms")], walk(rss * 3.0, rss * 3.1)),
            ],
        );
        let cpu = self.rng.range_f64(0.01, 0.9);
        self.metric(
            s,
            "process.runtime.cpython.cpu_time",
            "Runtime cpython CPU time",
            "s",
            Kind::Counter,
            false,
            vec![
                (vec![kv("type", "user")], Spec::Seconds(cpu * 0.85)),
                (vec![kv("type", "system")], Spec::Seconds(cpu * 0.15)),
            ],
        );
        let gc = (0..3)
            .map(|g| {
                (
                    vec![kv("count", g.to_string())],
                    Spec::Count(5.0 / (1 << (3 * g)) as f64),
                )
            })
            .collect();
        self.metric(
            s,
            "process.runtime.cpython.gc_count",
            "Runtime cpython GC count",
            "By",
            Kind::Counter,
            true,
            gc,
        );
        self.metric(
            s,
            "process.runtime.cpython.thread_count",
            "Runtime active threads count",
            "{thread}",
            Kind::UpDown,
            true,
            vec![(vec![], walk(4.0, 16.0))],
        );
        self.metric(
            s,
            "process.runtime.cpython.context_switches",
            "Runtime context switches",
            "{switch}",
            Kind::Counter,
            true,
            vec![
                (vec![kv("type", "voluntary")], Spec::Count(120.0)),
                (vec![kv("type", "involuntary")], Spec::Count(6.0)),
            ],
        );
        self.metric(
            s,
            "process.runtime.cpython.cpu.utilization",
            "Runtime CPU utilization",
            "1",
            Kind::Gauge,
            false,
            vec![(vec![], walk(0.0, (cpu / 2.0).min(1.0)))],
        );
    }
}
