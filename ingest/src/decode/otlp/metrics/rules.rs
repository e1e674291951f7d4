//! The translation's rules that need no translator state: attribute keys into label names, the
//! identity labels (`job`, `instance`, the cluster), limits, explicit-bucket shapes, timestamps
//! and the cluster decision of a resource.

use super::*;

/// Normalises attribute keys into label names. Sorting by original key (then value, so the
/// result never depends on attribute order) before merging makes colliding keys join their
/// values with `;` in key order, as Prometheus does. Names starting with `__` are reserved for
/// Prometheus's own labels (`__name__`...) and dropped. An unusable key is an error when
/// `strict`, else skipped.
pub(super) fn normalise_attributes<'a>(
    attrs: impl Iterator<Item = &'a KeyValue>,
    strict: bool,
) -> Result<BTreeMap<String, String>, String> {
    let mut pairs: Vec<(&str, String)> = attrs
        .map(|kv| (kv.key.as_str(), label_value(kv.value.as_ref())))
        .collect();
    pairs.sort();
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in pairs {
        let name = match label_name(key) {
            Ok(n) => n,
            Err(reason) if strict => return Err(reason),
            Err(_) => continue,
        };
        if name.starts_with("__") {
            continue;
        }
        match map.entry(name) {
            Entry::Vacant(e) => {
                e.insert(value);
            }
            Entry::Occupied(mut e) => {
                let v = e.get_mut();
                v.push(';');
                v.push_str(&value);
            }
        }
    }
    Ok(map)
}

/// Sets `job`, `instance` and the cluster labels (overriding attributes of those names). A
/// point's own `cluster` attribute that disagrees with the decided cluster is kept as
/// `exported_cluster`, unless the resource's own cluster already is.
pub(super) fn set_identity(map: &mut BTreeMap<String, String>, res: &ResourceCtx) {
    if let Some(job) = &res.job {
        map.insert("job".to_string(), job.clone());
    }
    if let Some(instance) = &res.instance {
        map.insert("instance".to_string(), instance.clone());
    }
    let attribute_cluster = map
        .insert(CLUSTER.to_string(), res.cluster.clone())
        .filter(|v| !v.is_empty() && *v != res.cluster);
    if let Some(exported) = res.exported_cluster.clone().or(attribute_cluster) {
        map.insert(EXPORTED_CLUSTER.to_string(), exported);
    }
}

/// Inserts or replaces a label in a sorted vector.
pub(super) fn upsert(labels: &mut Vec<Label>, name: &str, value: String) {
    match labels.binary_search_by(|l| l.name.as_str().cmp(name)) {
        Ok(i) => labels[i].value = value,
        Err(i) => labels.insert(i, Label::new(name, value)),
    }
}

pub(super) fn check_limits(labels: &[Label], limits: &Limits) -> Result<(), String> {
    if labels.len() > limits.max_labels_per_series {
        return Err(format!(
            "series has {} labels, more than the limit of {}",
            labels.len(),
            limits.max_labels_per_series
        ));
    }
    for l in labels {
        if l.name.len() > limits.max_label_name_bytes {
            return Err(format!(
                "label name {:?} is {} bytes, over the limit of {}",
                clip(&l.name),
                l.name.len(),
                limits.max_label_name_bytes
            ));
        }
        if l.value.len() > limits.max_label_value_bytes {
            return Err(format!(
                "value of label {:?} is {} bytes, over the limit of {}",
                clip(&l.name),
                l.value.len(),
                limits.max_label_value_bytes
            ));
        }
    }
    Ok(())
}

/// OTLP requires `bucket_counts` to be empty or one longer than `explicit_bounds`, and the bounds
/// to increase; anything else would produce duplicate or misleading `le` series.
pub(super) fn check_explicit_buckets(p: &HistogramDataPoint) -> Result<(), String> {
    if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
        return Err(format!(
            "histogram data point has {} bucket counts for {} explicit bounds (must be bounds + 1)",
            p.bucket_counts.len(),
            p.explicit_bounds.len()
        ));
    }
    let increasing = p.explicit_bounds.windows(2).all(|w| w[0] < w[1]);
    if !increasing || p.explicit_bounds.iter().any(|b| !b.is_finite()) {
        return Err("histogram explicit_bounds must be finite and strictly increasing".to_string());
    }
    Ok(())
}

pub(super) fn no_recorded_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

/// OTLP nanoseconds → Prometheus milliseconds (truncating), refusing what storage cannot name.
pub(super) fn timestamp_ms(ns: u64) -> Result<TimestampMs, String> {
    if ns == 0 {
        return Err("data point has no timestamp (time_unix_nano is 0)".to_string());
    }
    // u64::MAX ns is ~1.8e13 ms, well inside i64.
    let ms = (ns / 1_000_000) as i64;
    if !(MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&ms) {
        return Err(format!(
            "timestamp {ms} ms is outside the storable range (years 0000 to 9999)"
        ));
    }
    Ok(ms)
}

/// The first value of a resource attribute, as a string.
pub(super) fn attribute(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| label_value(kv.value.as_ref()))
}

/// The cluster rule of [`crate::cluster`] for a resource whose own cluster is `own`: the
/// cluster to stamp, and the own value to keep as `exported_cluster` when the token overrides it.
pub(super) fn decide_cluster(ctx: &ClusterContext, own: Option<String>) -> Result<(String, Option<String>), String> {
    use crate::cluster::Stamp;
    match ctx.decide(own.as_deref())? {
        Some(Stamp::Keep) => Ok((own.unwrap_or_default(), None)),
        Some(Stamp::Insert(c)) => Ok((c.to_string(), None)),
        Some(Stamp::Replace { cluster, exported }) => Ok((cluster.to_string(), Some(exported.to_string()))),
        None => Err(
            "no cluster: set the k8s.cluster.name resource attribute (e.g. with the collector's resource or \
             k8sattributes processor, or OTEL_RESOURCE_ATTRIBUTES=k8s.cluster.name=<name>), send the \
             X-Tributary-Cluster header (or the configured cluster_header), or authenticate with a token \
             mapped to a cluster"
                .to_string(),
        ),
    }
}

pub(super) fn describe_resource(attrs: &[KeyValue]) -> String {
    match attribute(attrs, SERVICE_NAME) {
        Some(name) => format!("with service.name {:?}", clip(&name)),
        None => "without service.name".to_string(),
    }
}

pub(super) fn count_points(rm: &ResourceMetrics) -> u64 {
    rm.scope_metrics
        .iter()
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}
