//! The Loki push API, as it arrives over HTTP: `decode::loki`.
//!
//! Every input is used four ways:
//! - as a snappy block body: `decode::snappy_block` with a 64 KiB limit, then `loki::decode_protobuf`
//!   as in the ingester;
//! - as an already decompressed `logproto.PushRequest`, into `loki::decode_protobuf`, with prost (the
//!   reference decoder, on the same `tributary_proto::loki` structs) as the oracle: both accept or both
//!   refuse the bytes, and every entry prost sees is either a record or counted as rejected;
//! - as a JSON push body, into `loki::decode_json`;
//! - as a label-set text, into `loki::parse_label_set`: what it accepts must survive a re-quote
//!   (Go `strconv.Quote` style) and parse back to the same pairs.
//!
//! Accepted records are held to the decoder's contract: labels sorted and unique with a `cluster`
//! (the token's, so "the token wins" is checked too), at most `max_labels` of them, lines within
//! `max_line_bytes`, `attributes` a JSON object, hex ids of the right length. Decoding twice gives the
//! same result (WAL replay depends on it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::{self, loki};
use tributary_proto::loki::PushRequest;
use tributary_proto::prost::Message;

const DECOMPRESSED_LIMIT: usize = 64 << 10;

const OPTS: loki::Options = loki::Options {
    max_line_bytes: 256,
    max_labels: 8,
    max_label_name_bytes: 32,
    max_label_value_bytes: 64,
};

fuzz_target!(|data: &[u8]| {
    // Half the inputs run under a token, half under a header only, chosen by the first byte.
    let ctx = if data.first().is_some_and(|b| b & 1 == 1) {
        ClusterContext {
            token_cluster: Some("fuzz-token".to_string()),
            header_cluster: Some("fuzz-header".to_string()),
        }
    } else {
        ClusterContext {
            token_cluster: None,
            header_cluster: Some("fuzz-header".to_string()),
        }
    };
    if let Ok(raw) = decode::snappy_block(data, DECOMPRESSED_LIMIT) {
        assert!(raw.len() <= DECOMPRESSED_LIMIT, "{} bytes over the limit", raw.len());
        check_protobuf(&raw, &ctx);
    }
    check_protobuf(data, &ctx);

    let json = loki::decode_json(data, &ctx, &OPTS);
    if let Ok(d) = &json {
        check_records(d, &ctx);
    }
    assert_eq!(
        format!("{json:?}"),
        format!("{:?}", loki::decode_json(data, &ctx, &OPTS))
    );

    check_label_set(&String::from_utf8_lossy(data));
});

fn check_protobuf(buf: &[u8], ctx: &ClusterContext) {
    let ours = loki::decode_protobuf(buf, ctx, &OPTS);
    match (PushRequest::decode(buf), &ours) {
        (Ok(req), Ok(d)) => {
            let total: u64 = req.streams.iter().map(|s| s.entries.len() as u64).sum();
            assert_eq!(
                d.records.len() as u64 + d.rejected,
                total,
                "every entry kept or counted"
            );
            check_records(d, ctx);
        }
        (Err(_), Err(_)) => {}
        (oracle, ours) => panic!("prost says {oracle:?}, decode_protobuf says {ours:?}"),
    }
    assert_eq!(
        format!("{ours:?}"),
        format!("{:?}", loki::decode_protobuf(buf, ctx, &OPTS))
    );
}

fn check_records(d: &loki::DecodedPush, ctx: &ClusterContext) {
    assert_eq!(d.reasons.is_empty(), d.rejected == 0, "{d:?}");
    for r in &d.records {
        let labels: Vec<_> = r.labels.iter().collect();
        assert!(labels.windows(2).all(|w| w[0].name < w[1].name), "{:?}", r.labels);
        assert!(labels.iter().all(|l| !l.value.is_empty()), "{:?}", r.labels);
        assert!(labels.len() <= OPTS.max_labels, "{:?}", r.labels);
        match &ctx.token_cluster {
            Some(t) => assert_eq!(r.labels.get("cluster"), Some(t.as_str())),
            None => assert!(r.labels.get("cluster").is_some(), "{:?}", r.labels),
        }
        assert!(r.body.len() <= OPTS.max_line_bytes);
        assert!(
            r.attributes.starts_with('{') && r.attributes.ends_with('}'),
            "{}",
            r.attributes
        );
        assert_eq!(&*r.resource_attributes, "{}");
        assert!(r.trace_id.is_empty() || r.trace_id.len() == 32, "{}", r.trace_id);
        assert!(r.span_id.is_empty() || r.span_id.len() == 16, "{}", r.span_id);
    }
}

fn check_label_set(text: &str) {
    let Ok(pairs) = loki::parse_label_set(text) else { return };
    let requoted: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{}={}", quote(n), quote(v)))
        .collect();
    let again = format!("{{{}}}", requoted.join(", "));
    assert_eq!(loki::parse_label_set(&again).as_ref(), Ok(&pairs), "{again}");
}

/// Go `strconv.Quote`'s escapes for what must be escaped; everything else raw.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
