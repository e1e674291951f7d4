//! The ruler's [`RuleSink`] in a process with an ingester: what rules produce goes through the
//! ingester's one write path (WAL first, then the head) as a remote-write 1.0 request would, so
//! it is as durable as a push and readable by the next evaluation.

use std::sync::Arc;

use prost::Message;
use tributary_ingest::Ingester;
use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::Body;
use tributary_proto::prometheus as pb;
use tributary_query::ruler::{RuleSample, RuleSink};

/// Writes rule output into the local ingester.
#[derive(Debug)]
pub(crate) struct IngesterSink(pub(crate) Arc<Ingester>);

#[async_trait::async_trait]
impl RuleSink for IngesterSink {
    async fn write(&self, samples: Vec<RuleSample>) -> Result<(), String> {
        let n = samples.len();
        let request = pb::WriteRequest {
            timeseries: samples
                .into_iter()
                .map(|s| pb::TimeSeries {
                    labels: s
                        .labels
                        .iter()
                        .map(|l| pb::Label {
                            name: l.name.clone(),
                            value: l.value.clone(),
                        })
                        .collect(),
                    samples: vec![pb::Sample {
                        value: s.value,
                        timestamp: s.timestamp_ms,
                    }],
                    exemplars: Vec::new(),
                    histograms: Vec::new(),
                })
                .collect(),
            metadata: Vec::new(),
        };
        let bytes = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .map_err(|e| format!("encoding rule output: {e}"))?;
        let body = Body::remote_write(bytes.into(), None, Some("snappy")).map_err(|e| e.to_string())?;
        // Every series names its own cluster (the ruler sees to it): no token, no header.
        let outcome = self
            .0
            .write(ClusterContext::default(), body)
            .await
            .map_err(|e| format!("writing {n} rule samples: {e}"))?;
        if outcome.rejected.is_empty() {
            Ok(())
        } else {
            Err(format!("rule samples refused: {}", outcome.rejected.reasons_text()))
        }
    }
}
