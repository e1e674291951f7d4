//! The protobuf wire reader under every decoder: `decode::wire::Reader`.
//!
//! Iterating any input must end in `Ok(None)` at the buffer's end or an error, never a panic, with
//! `position()` moving forward on each field, each field consuming at least two bytes, and every
//! `Bytes` value borrowed from inside the input. After `Ok(None)` the
//! reader stays at the end, and a canonical re-encoding of what it read is no longer than the input
//! and reads back to the same fields.
//!
//! The oracle is prost's own decoder (`prost::encoding`): both must read the same fields and agree on
//! whether the buffer is valid protobuf. The reader refuses groups (wire types 3 and 4) by design,
//! so a buffer prost reads a group from must be an error for the reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::encoding::{WireType, decode_key, decode_varint};
use tributary_ingest::decode::wire::{Reader, Value};

fuzz_target!(|data: &[u8]| {
    let (fields, complete) = read_all(data);
    assert!(
        fields.len() <= data.len() / 2,
        "{} fields from {} bytes",
        fields.len(),
        data.len()
    );
    let range = data.as_ptr_range();
    for (f, v) in &fields {
        assert!(*f >= 1);
        if let Value::Bytes(b) = v {
            assert!(
                range.start <= b.as_ptr() && b.as_ptr_range().end <= range.end,
                "borrowed outside the input"
            );
        }
    }

    let (oracle, oracle_complete) = prost_read_all(data);
    assert_eq!(fields, oracle, "reader and prost read different fields");
    assert_eq!(
        complete, oracle_complete,
        "reader and prost disagree on validity (fields: {fields:?})"
    );

    if complete {
        let canonical = encode(&fields);
        assert!(
            canonical.len() <= data.len(),
            "canonical encoding longer than the input"
        );
        assert_eq!(
            read_all(&canonical),
            (fields, true),
            "canonical encoding reads back differently"
        );
    }
});

/// Every field up to the end or the first error; `true` if the end was reached.
fn read_all(buf: &[u8]) -> (Vec<(u32, Value<'_>)>, bool) {
    let mut r = Reader::new(buf);
    let mut fields = Vec::new();
    loop {
        let at = r.position();
        match r.next_field() {
            Ok(Some(f)) => {
                assert!(
                    at < r.position() && r.position() <= buf.len(),
                    "position went from {at} to {}",
                    r.position()
                );
                fields.push(f);
            }
            Ok(None) => {
                assert_eq!(r.position(), buf.len(), "ended before the end of the buffer");
                assert_eq!(r.next_field(), Ok(None), "the end must stay the end");
                return (fields, true);
            }
            Err(_) => return (fields, false),
        }
    }
}

/// The same walk with prost's decoder. Group wire types end it as invalid, as they do for the reader.
fn prost_read_all(mut buf: &[u8]) -> (Vec<(u32, Value<'_>)>, bool) {
    let mut fields = Vec::new();
    while !buf.is_empty() {
        let Ok((tag, wire_type)) = decode_key(&mut buf) else {
            return (fields, false);
        };
        let value = match wire_type {
            WireType::Varint => decode_varint(&mut buf).ok().map(Value::Varint),
            WireType::SixtyFourBit => {
                take(&mut buf, 8).map(|b| Value::Fixed64(u64::from_le_bytes(b.try_into().unwrap())))
            }
            WireType::ThirtyTwoBit => {
                take(&mut buf, 4).map(|b| Value::Fixed32(u32::from_le_bytes(b.try_into().unwrap())))
            }
            WireType::LengthDelimited => decode_varint(&mut buf)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| take(&mut buf, n))
                .map(Value::Bytes),
            WireType::StartGroup | WireType::EndGroup => None,
        };
        match value {
            Some(v) => fields.push((tag, v)),
            None => return (fields, false),
        }
    }
    (fields, true)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = buf.split_at_checked(n)?;
    *buf = rest;
    Some(head)
}

fn encode(fields: &[(u32, Value<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(f, v) in fields {
        let wire_type = match v {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(_) => 2,
            Value::Fixed32(_) => 5,
        };
        varint(&mut out, u64::from(f) << 3 | wire_type);
        match v {
            Value::Varint(x) => varint(&mut out, x),
            Value::Fixed64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bytes(b) => {
                varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::Fixed32(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
    out
}

fn varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}
