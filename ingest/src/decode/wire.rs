//! A minimal, allocation-free reader of the protobuf wire format.
//!
//! Why not `prost` structs: decoding into owned structs allocates a `String` per label and costs
//! about ten times the floor measured in `shared/performance.md`. This reader borrows from the
//! decompressed buffer instead; the head allocates labels only for series it has not seen.

/// The largest field number protobuf allows.
const MAX_FIELD_NUMBER: u32 = (1 << 29) - 1;

/// A protobuf field's payload, borrowed from the buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: bytes, a string or a sub-message.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Why a buffer is not valid protobuf.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends inside a field (its offset).
    #[error("truncated protobuf at byte {0}")]
    Truncated(usize),
    /// A varint longer than 64 bits (its offset).
    #[error("invalid varint at byte {0}")]
    BadVarint(usize),
    /// A wire type protobuf does not define (or the deprecated groups).
    #[error("unsupported protobuf wire type {wire_type} at byte {at}")]
    BadWireType {
        /// The wire type.
        wire_type: u8,
        /// Its offset.
        at: usize,
    },
    /// Field number 0, which protobuf forbids (its offset).
    #[error("invalid protobuf field number 0 at byte {0}")]
    ZeroField(usize),
    /// A field number above 2^29 - 1 (its offset).
    #[error("protobuf field number out of range at byte {0}")]
    BadFieldNumber(usize),
}

/// Iterates the fields of one message.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader of the message in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(WireError::Truncated(start));
            };
            self.pos += 1;
            // The tenth byte holds bit 63 only; more would overflow, which prost rejects too.
            if shift == 63 && b > 1 {
                return Err(WireError::BadVarint(start));
            }
            out |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(out);
            }
        }
        Err(WireError::BadVarint(start))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(WireError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Byte offset of the next field within the message.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        // Field numbers are at most 2^29 - 1; a longer key must not alias to a small field by truncation.
        let field = u32::try_from(key >> 3)
            .ok()
            .filter(|&f| f <= MAX_FIELD_NUMBER)
            .ok_or(WireError::BadFieldNumber(at))?;
        if field == 0 {
            return Err(WireError::ZeroField(at));
        }
        let value = match (key & 7) as u8 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| WireError::Truncated(at))?;
                Value::Bytes(self.take(len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
            wire_type => return Err(WireError::BadWireType { wire_type, at }),
        };
        Ok(Some((field, value)))
    }
}

/// The values of a packed repeated varint field (`repeated uint32/sint64/...` in proto3).
#[derive(Debug)]
pub struct PackedVarints<'a>(Reader<'a>);

impl<'a> PackedVarints<'a> {
    /// The values packed in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self(Reader::new(buf))
    }
}

impl Iterator for PackedVarints<'_> {
    type Item = Result<u64, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.pos >= self.0.buf.len() {
            return None;
        }
        let v = self.0.varint();
        if v.is_err() {
            // Fused: an error ends the field.
            self.0.pos = self.0.buf.len();
        }
        Some(v)
    }
}

/// The values of a packed repeated 8-byte field (`repeated double`), as raw bits.
pub fn packed_fixed64(buf: &[u8]) -> Result<impl Iterator<Item = u64> + '_, WireError> {
    if !buf.len().is_multiple_of(8) {
        return Err(WireError::Truncated(buf.len() - buf.len() % 8));
    }
    Ok(buf
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))))
}

/// Decodes a `sint64` (zigzag) varint.
pub fn zigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Decodes a `sint32` (zigzag) varint; like every protobuf decoder, only the low 32 bits count.
pub fn zigzag32(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_each_wire_type() {
        // field 1 varint 150, field 2 bytes "hi", field 3 fixed64 1, field 4 fixed32 2
        let buf = [
            0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0,
        ];
        let mut r = Reader::new(&buf);
        assert_eq!(r.next_field().unwrap(), Some((1, Value::Varint(150))));
        assert_eq!(r.next_field().unwrap(), Some((2, Value::Bytes(b"hi"))));
        assert_eq!(r.next_field().unwrap(), Some((3, Value::Fixed64(1))));
        assert_eq!(r.next_field().unwrap(), Some((4, Value::Fixed32(2))));
        assert_eq!(r.next_field().unwrap(), None);
    }

    /// Found by the `wire` fuzz target: both were accepted, prost rejects them.
    #[test]
    fn oversized_keys_and_varints_are_errors_not_aliases() {
        // Field 2^32 + 1 (wire type 2) must not read as field 1.
        assert!(
            Reader::new(&[0x8a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00])
                .next_field()
                .is_err()
        );
        assert!(Reader::new(&[128, 208, 149, 188, 49, 0]).next_field().is_err());
        // A varint of more than 64 bits.
        let mut v = vec![0x08];
        v.extend([0xff; 9]);
        v.push(0x7f);
        assert_eq!(Reader::new(&v).next_field(), Err(WireError::BadVarint(1)));
        // u64::MAX itself is fine: ten bytes, the last one 0x01.
        let mut max = vec![0x08];
        max.extend([0xff; 9]);
        max.push(0x01);
        assert_eq!(
            Reader::new(&max).next_field().unwrap(),
            Some((1, Value::Varint(u64::MAX)))
        );
    }

    #[test]
    fn truncation_is_an_error() {
        assert!(Reader::new(&[0x12, 0x05, b'a']).next_field().is_err());
        assert!(Reader::new(&[0x08, 0x80]).next_field().is_err());
        assert!(Reader::new(&[0x0b]).next_field().is_err()); // wire type 3 (groups) unsupported
    }

    #[test]
    fn packed_fields_and_zigzag() {
        let v: Vec<u64> = PackedVarints::new(&[1, 0x96, 0x01, 0]).map(|v| v.unwrap()).collect();
        assert_eq!(v, [1, 150, 0]);
        let mut bad = PackedVarints::new(&[1, 0x80]);
        assert_eq!(bad.next(), Some(Ok(1)));
        assert!(matches!(bad.next(), Some(Err(_))));
        assert_eq!(bad.next(), None);
        let bits: Vec<u64> = packed_fixed64(&1.5f64.to_le_bytes()).unwrap().collect();
        assert_eq!(bits, [1.5f64.to_bits()]);
        assert!(packed_fixed64(&[0; 9]).is_err());
        assert_eq!(
            (zigzag64(0), zigzag64(1), zigzag64(2), zigzag64(u64::MAX)),
            (0, -1, 1, i64::MIN)
        );
        assert_eq!(
            (zigzag32(1), zigzag32(u64::from(u32::MAX)), zigzag32(0x1_0000_0002)),
            (-1, i32::MIN, 1)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut r = Reader::new(&buf);
            for _ in 0..300 {
                match r.next_field() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
