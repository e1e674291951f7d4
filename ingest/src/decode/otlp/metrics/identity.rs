//! Raw keys of OTLP data points: the known-series fast path of the translation (see the
//! known-span invariant in [`crate::head::input`], which this path follows as remote-write's does).
//!
//! A point's key hashes everything its series' labels are a function of, as it arrived, without
//! building them: the request's context (cluster stamping, translation options, limits), the
//! resource's attributes, the scope's name and version, the metric's Prometheus family name and
//! type, and the point's attributes and shape (for histograms the bounds and which series exist,
//! for summaries the quantiles). Series `j` of the point (the order [`super`]'s point functions
//! produce them in) gets the point key plus `j` times an odd constant. Equal keys therefore mean
//! equal labels; the converse need not hold (attributes in another order hash differently and take
//! the full path, which is only slower).
//!
//! The full path registers each new series under its key (`Translated::keys`); a point whose keys
//! the head knows, all of them, is translated to samples only (`Translated::known`). A point with
//! exemplars builds the labels of the series its exemplars go to, and only those.

use tributary_proto::otlp::common::v1::{KeyValue, any_value};
use tributary_proto::otlp::metrics::v1::summary_data_point::ValueAtQuantile;
use xxhash_rust::xxh3::Xxh3;

use super::Options;
use crate::cluster::ClusterContext;
use crate::decode::otlp::any_value::label_value;
use crate::head::input::RawKey;

/// Separates these keys from remote-write's (hashes of label bytes) in the head's one raw index.
const DOMAIN: &[u8] = b"tributary/otlp-metrics/v1";
/// Spreads a point's series over the key space (odd, so `j` ↦ key is one-to-one).
const STRIDE: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;

/// The point's series `j`.
pub(super) fn series_key(point: RawKey, j: usize) -> RawKey {
    point.wrapping_add(STRIDE.wrapping_mul(j as u128 + 1))
}

fn bytes(h: &mut Xxh3, b: &[u8]) {
    h.update(&(b.len() as u64).to_le_bytes());
    h.update(b);
}

/// Attribute keys and values as the translation reads them: a string value as itself, any
/// other value as the label value it becomes (tagged, so the two never meet).
fn attributes(h: &mut Xxh3, attrs: &[KeyValue]) {
    h.update(&(attrs.len() as u64).to_le_bytes());
    for kv in attrs {
        bytes(h, kv.key.as_bytes());
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => {
                h.update(b"s");
                bytes(h, s.as_bytes());
            }
            _ => {
                h.update(b"o");
                bytes(h, label_value(kv.value.as_ref()).as_bytes());
            }
        }
    }
}

/// What every key of a request shares: the cluster context and the translation settings.
pub(super) fn request_key(ctx: &ClusterContext, opts: &Options<'_>) -> RawKey {
    let mut h = Xxh3::new();
    bytes(&mut h, DOMAIN);
    for part in [&ctx.token_cluster, &ctx.header_cluster] {
        h.update(&[part.is_some() as u8]);
        bytes(&mut h, part.as_deref().unwrap_or("").as_bytes());
    }
    h.update(&[opts.add_suffixes as u8]);
    h.update(&(opts.promote_resource_attributes.len() as u64).to_le_bytes());
    for a in opts.promote_resource_attributes {
        bytes(&mut h, a.as_bytes());
    }
    let l = &opts.limits;
    for n in [l.max_labels_per_series, l.max_label_name_bytes, l.max_label_value_bytes] {
        h.update(&(n as u64).to_le_bytes());
    }
    h.digest128()
}

/// A resource's part: the request's and its attributes.
pub(super) fn resource_key(request: RawKey, attrs: &[KeyValue]) -> RawKey {
    let mut h = Xxh3::new();
    h.update(&request.to_le_bytes());
    attributes(&mut h, attrs);
    h.digest128()
}

/// A scope's part: the resource's, and the scope's name and version.
pub(super) fn scope_key(resource: RawKey, name: &str, version: &str) -> RawKey {
    let mut h = Xxh3::new();
    h.update(&resource.to_le_bytes());
    bytes(&mut h, name.as_bytes());
    bytes(&mut h, version.as_bytes());
    h.digest128()
}

/// Which kind of point, and the shape that decides its series.
pub(super) enum Shape<'a> {
    Number,
    Histogram {
        bounds: &'a [f64],
        buckets: usize,
        sum: bool,
    },
    Summary {
        quantiles: &'a [ValueAtQuantile],
    },
}

/// A point's key: the scope's, the family, the point's attributes and shape.
pub(super) fn point_key(scope: RawKey, family: &str, attrs: &[KeyValue], shape: Shape<'_>) -> RawKey {
    let mut h = Xxh3::new();
    h.update(&scope.to_le_bytes());
    bytes(&mut h, family.as_bytes());
    attributes(&mut h, attrs);
    match shape {
        Shape::Number => h.update(b"n"),
        Shape::Histogram { bounds, buckets, sum } => {
            h.update(b"h");
            h.update(&[sum as u8]);
            h.update(&(buckets as u64).to_le_bytes());
            h.update(&(bounds.len() as u64).to_le_bytes());
            for b in bounds {
                h.update(&b.to_bits().to_le_bytes());
            }
        }
        Shape::Summary { quantiles } => {
            h.update(b"q");
            h.update(&(quantiles.len() as u64).to_le_bytes());
            for q in quantiles {
                h.update(&q.quantile.to_bits().to_le_bytes());
            }
        }
    }
    h.digest128()
}
