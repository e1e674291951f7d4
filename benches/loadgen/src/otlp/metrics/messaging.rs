//! Kafka consumer instrumentation of worker pods (`otelsarama`, the Java agent's
//! kafka-clients, `confluent_kafka`), plus the application's own consumer-lag gauge.

use super::histogram::{DURATION_BOUNDS, duration};
use super::{Builder, Kind, Spec};
use crate::otlp::catalog::{Deployment, Runtime, kv};

impl Builder {
    /// The messaging metrics of a worker pod consuming `d.topic`.
    pub(crate) fn worker(&mut self, d: &Deployment) {
        let scope = match d.runtime {
            Runtime::Go => self.scope("github.com/IBM/sarama/otelsarama", "0.54.0"),
            Runtime::Java => self.scope("io.opentelemetry.kafka-clients-2.6", "2.10.0-alpha"),
            Runtime::Python => self.scope("opentelemetry.instrumentation.confluent_kafka", "0.48b0"),
        };
        let base = |d: &Deployment| {
            vec![
                kv("messaging.system", "kafka"),
                kv("messaging.destination.name", d.topic),
                kv("messaging.consumer.group.name", d.name.as_str()),
                kv("messaging.operation.name", "process"),
            ]
        };
        let rate = self.rng.range_f64(0.5, 80.0);
        let latency = self.rng.range_f64(0.002, 0.5);
        let mut failed = base(d);
        failed.push(kv("error.type", "TimeoutException"));
        self.metric(
            scope,
            "messaging.process.duration",
            "Duration of processing operation.",
            "s",
            Kind::Histogram(DURATION_BOUNDS),
            false,
            vec![
                (base(d), Spec::Observe(rate, duration(latency))),
                (failed, Spec::Observe(rate * 0.003, duration(latency * 4.0))),
            ],
        );
        let partitions = self.rng.range(1, 4);
        let consumed = (0..partitions)
            .map(|p| {
                let mut a = base(d);
                a.push(kv("messaging.destination.partition.id", p.to_string()));
                (a, Spec::Count(rate / partitions as f64))
            })
            .collect();
        self.metric(
            scope,
            "messaging.client.consumed.messages",
            "Number of messages that were delivered to the application.",
            "{message}",
            Kind::Counter,
            true,
            consumed,
        );
        let app = self.scope("app", "");
        let lag = (0..partitions)
            .map(|p| {
                (
                    vec![
                        kv("messaging.destination.name", d.topic),
                        kv("messaging.destination.partition.id", p.to_string()),
                    ],
                    Spec::Walk {
                        lo: 0.0,
                        hi: 5000.0,
                        step: 300.0,
                    },
                )
            })
            .collect();
        self.metric(
            app,
            "app.consumer.lag",
            "Messages not yet consumed, per partition.",
            "{message}",
            Kind::Gauge,
            true,
            lag,
        );
    }
}
