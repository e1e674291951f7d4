//! Prometheus remote-write: 1.0 (`prometheus/prompb/types.proto` and `remote.proto`, package
//! `prometheus`; field numbers unchanged since 1.0, Prometheus v2.42 / v3.x) and 2.0 ([`v2`],
//! `prompb/io/prometheus/write/v2/types.proto`, package `io.prometheus.write.v2`).
//!
//! Only what remote-write senders put on the wire. The body of a request is the snappy *block*
//! encoding of [`WriteRequest`] (1.0) or [`v2::Request`] (2.0). The structs serve senders and tests;
//! `ingest::decode` reads the bytes with its zero-copy reader, walking the field numbers in
//! [`field`] and [`v2::field`]. Remote-read's messages, which reuse [`TimeSeries`] and [`Label`],
//! are in [`read`].

pub mod read;

/// `prometheus.WriteRequest`. Field 2 is reserved upstream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`. Labels must be sorted by name with unique names.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample` (and `io.prometheus.write.v2.Sample`, the same message): a float value at a
/// millisecond timestamp.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `prometheus.MetricMetadata.MetricType`; `io.prometheus.write.v2.Metadata.MetricType` numbers
/// the same types the same way (`METRIC_TYPE_UNSPECIFIED` = 0 ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    Gaugehistogram = 4,
    Summary = 5,
    Info = 6,
    Stateset = 7,
}

/// `prometheus.Histogram`, a native histogram sample. `io.prometheus.write.v2.Histogram` is the same
/// message field for field (only its enum constants are spelled differently), so both protocols
/// use this struct. Integer histograms set `count_int`, `zero_count_int` and the `*_deltas`
/// (each bucket's count minus the previous one's); float histograms set `count_float`,
/// `zero_count_float` and the absolute `*_counts`. `custom_values` (16) are the bucket bounds of
/// schema −53 (custom buckets).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(oneof = "histogram::Count", tags = "1, 2")]
    pub count: Option<histogram::Count>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "histogram::ZeroCount", tags = "6, 7")]
    pub zero_count: Option<histogram::ZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    #[prost(enumeration = "histogram::ResetHint", tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// The `oneof`s and the enum nested in [`Histogram`].
pub mod histogram {
    /// `oneof count`.
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Count {
        #[prost(uint64, tag = "1")]
        CountInt(u64),
        #[prost(double, tag = "2")]
        CountFloat(f64),
    }

    /// `oneof zero_count`.
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum ZeroCount {
        #[prost(uint64, tag = "6")]
        ZeroCountInt(u64),
        #[prost(double, tag = "7")]
        ZeroCountFloat(f64),
    }

    /// `Histogram.ResetHint`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum ResetHint {
        Unknown = 0,
        Yes = 1,
        No = 2,
        Gauge = 3,
    }
}

/// `prometheus.BucketSpan`: `length` buckets starting `offset` after the previous span.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Field numbers the zero-copy reader in `ingest::decode` walks; they mirror the derives above.
/// Each constant is named `<MESSAGE>_<FIELD>` after the field whose number it holds (the test
/// `field_numbers_match_the_structs` checks them against the encoded structs).
pub mod field {
    pub const WRITE_REQUEST_TIMESERIES: u32 = 1;
    pub const WRITE_REQUEST_METADATA: u32 = 3;
    pub const TIMESERIES_LABELS: u32 = 1;
    pub const TIMESERIES_SAMPLES: u32 = 2;
    pub const TIMESERIES_EXEMPLARS: u32 = 3;
    pub const TIMESERIES_HISTOGRAMS: u32 = 4;
    pub const LABEL_NAME: u32 = 1;
    pub const LABEL_VALUE: u32 = 2;
    pub const SAMPLE_VALUE: u32 = 1;
    pub const SAMPLE_TIMESTAMP: u32 = 2;
    pub const EXEMPLAR_LABELS: u32 = 1;
    pub const EXEMPLAR_VALUE: u32 = 2;
    pub const EXEMPLAR_TIMESTAMP: u32 = 3;
    pub const METADATA_TYPE: u32 = 1;
    pub const METADATA_FAMILY_NAME: u32 = 2;
    pub const METADATA_HELP: u32 = 4;
    pub const METADATA_UNIT: u32 = 5;
    // `Histogram`, shared with remote-write 2.0.
    pub const HISTOGRAM_COUNT_INT: u32 = 1;
    pub const HISTOGRAM_COUNT_FLOAT: u32 = 2;
    pub const HISTOGRAM_SUM: u32 = 3;
    pub const HISTOGRAM_SCHEMA: u32 = 4;
    pub const HISTOGRAM_ZERO_THRESHOLD: u32 = 5;
    pub const HISTOGRAM_ZERO_COUNT_INT: u32 = 6;
    pub const HISTOGRAM_ZERO_COUNT_FLOAT: u32 = 7;
    pub const HISTOGRAM_NEGATIVE_SPANS: u32 = 8;
    pub const HISTOGRAM_NEGATIVE_DELTAS: u32 = 9;
    pub const HISTOGRAM_NEGATIVE_COUNTS: u32 = 10;
    pub const HISTOGRAM_POSITIVE_SPANS: u32 = 11;
    pub const HISTOGRAM_POSITIVE_DELTAS: u32 = 12;
    pub const HISTOGRAM_POSITIVE_COUNTS: u32 = 13;
    pub const HISTOGRAM_RESET_HINT: u32 = 14;
    pub const HISTOGRAM_TIMESTAMP: u32 = 15;
    pub const HISTOGRAM_CUSTOM_VALUES: u32 = 16;
    pub const BUCKET_SPAN_OFFSET: u32 = 1;
    pub const BUCKET_SPAN_LENGTH: u32 = 2;
}

pub mod v2 {
    //! Prometheus remote-write 2.0: `io.prometheus.write.v2` (`prompb/io/prometheus/write/v2/types.proto`,
    //! spec version 2.0-rc). Strings travel once, in [`Request::symbols`]; everything else refers to
    //! them by index ("refs"), and `symbols[0]` must be the empty string.

    pub use super::{BucketSpan, Histogram, Sample, histogram};

    /// `io.prometheus.write.v2.Request`. Fields 1 to 3 are reserved so that a 1.0 `WriteRequest`
    /// read as a 2.0 `Request` comes out empty rather than garbled.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`. `labels_refs` are (name, value) pairs of symbol
    /// indices, sorted by name; `created_timestamp` is 0 when unknown.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<Histogram>,
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
        #[prost(int64, tag = "6")]
        pub created_timestamp: i64,
    }

    /// `io.prometheus.write.v2.Exemplar`: label refs (pairs), value, timestamp (0 = not set).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// `io.prometheus.write.v2.Metadata`. `type` numbers the types like [`super::MetricType`];
    /// field 2 is unused upstream. Refs pointing at `symbols[0]` mean "no help" / "no unit".
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        #[prost(enumeration = "super::MetricType", tag = "1")]
        pub r#type: i32,
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }

    /// Field numbers of the 2.0 messages. `Sample` is 1.0's message, and `Histogram` and
    /// `BucketSpan` use [`super::field`]'s `HISTOGRAM_*` and `BUCKET_SPAN_*` numbers.
    pub mod field {
        pub const REQUEST_SYMBOLS: u32 = 4;
        pub const REQUEST_TIMESERIES: u32 = 5;
        pub const TIMESERIES_LABELS_REFS: u32 = 1;
        pub const TIMESERIES_SAMPLES: u32 = 2;
        pub const TIMESERIES_HISTOGRAMS: u32 = 3;
        pub const TIMESERIES_EXEMPLARS: u32 = 4;
        pub const TIMESERIES_METADATA: u32 = 5;
        pub const TIMESERIES_CREATED_TIMESTAMP: u32 = 6;
        pub const EXEMPLAR_LABELS_REFS: u32 = 1;
        pub const EXEMPLAR_VALUE: u32 = 2;
        pub const EXEMPLAR_TIMESTAMP: u32 = 3;
        pub const METADATA_TYPE: u32 = 1;
        pub const METADATA_HELP_REF: u32 = 3;
        pub const METADATA_UNIT_REF: u32 = 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// The first key of a message holding one field: `(field number << 3) | wire type`.
    fn first_field(bytes: &[u8]) -> u32 {
        u32::from(bytes[0]) >> 3
    }

    #[test]
    fn field_numbers_match_the_structs() {
        let h = |f: fn(&mut Histogram)| {
            let mut m = Histogram::default();
            f(&mut m);
            first_field(&m.encode_to_vec())
        };
        assert_eq!(
            h(|m| m.count = Some(histogram::Count::CountInt(1))),
            field::HISTOGRAM_COUNT_INT
        );
        assert_eq!(
            h(|m| m.count = Some(histogram::Count::CountFloat(1.0))),
            field::HISTOGRAM_COUNT_FLOAT
        );
        assert_eq!(h(|m| m.schema = -1), field::HISTOGRAM_SCHEMA);
        assert_eq!(
            h(|m| m.zero_count = Some(histogram::ZeroCount::ZeroCountFloat(1.0))),
            field::HISTOGRAM_ZERO_COUNT_FLOAT
        );
        assert_eq!(h(|m| m.positive_deltas = vec![1]), field::HISTOGRAM_POSITIVE_DELTAS);
        assert_eq!(h(|m| m.negative_counts = vec![1.0]), field::HISTOGRAM_NEGATIVE_COUNTS);
        assert_eq!(h(|m| m.reset_hint = 3), field::HISTOGRAM_RESET_HINT);
        assert_eq!(h(|m| m.timestamp = 5), field::HISTOGRAM_TIMESTAMP);
        assert_eq!(h(|m| m.custom_values = vec![1.0]), field::HISTOGRAM_CUSTOM_VALUES);
        // sint32: -1 zigzags to 1.
        assert_eq!(
            Histogram {
                schema: -1,
                ..Default::default()
            }
            .encode_to_vec(),
            [0x20, 1]
        );

        let req = v2::Request {
            symbols: vec![String::new()],
            timeseries: vec![],
        };
        assert_eq!(first_field(&req.encode_to_vec()), v2::field::REQUEST_SYMBOLS);
        let ts = v2::TimeSeries {
            created_timestamp: 7,
            ..Default::default()
        };
        assert_eq!(
            first_field(&ts.encode_to_vec()),
            v2::field::TIMESERIES_CREATED_TIMESTAMP
        );
        let md = v2::Metadata {
            r#type: 0,
            help_ref: 0,
            unit_ref: 2,
        };
        assert_eq!(first_field(&md.encode_to_vec()), v2::field::METADATA_UNIT_REF);
        // Packed refs: one length-delimited field.
        let ts = v2::TimeSeries {
            labels_refs: vec![1, 2],
            ..Default::default()
        };
        assert_eq!(ts.encode_to_vec(), [0x0a, 2, 1, 2]);
    }
}
