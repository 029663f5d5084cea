//! A minimal, allocation-free DER reader: just enough to walk a certificate and its names without
//! normalising anything (multi-valued RDNs must keep their encoded order, which a general DER library
//! re-sorts, and the hot path must not allocate).

use std::ops::Range;

/// Why the bytes are not the DER we expect. Kept small; the caller turns it into a user-facing error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlvError {
    /// The input ended inside a tag, length or value.
    Truncated,
    /// Indefinite or over-long length, or a length that is not minimal.
    BadLength,
    /// A different tag was found than the structure requires.
    UnexpectedTag { expected: u8, found: u8 },
    /// Bytes were left over where a structure should have ended.
    TrailingData,
    /// High-tag-number form where a universal tag was expected, or a malformed tag.
    BadTag,
}

impl std::fmt::Display for TlvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlvError::Truncated => f.write_str("truncated"),
            TlvError::BadLength => f.write_str("invalid DER length"),
            TlvError::UnexpectedTag { expected, found } => {
                write!(f, "expected tag 0x{expected:02x}, found 0x{found:02x}")
            }
            TlvError::TrailingData => f.write_str("unexpected trailing bytes"),
            TlvError::BadTag => f.write_str("invalid tag"),
        }
    }
}

/// One TLV, as positions into the buffer it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tlv {
    /// The first tag byte (class, constructed bit, number for numbers below 31).
    pub(crate) tag: u8,
    /// The whole TLV: tag, length and value.
    pub(crate) whole: Range<usize>,
    /// The value only.
    pub(crate) value: Range<usize>,
}

/// A cursor over `buf[pos..end]`.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, end: buf.len() }
    }

    /// A reader over the value of `tlv`, which was read from the same buffer.
    pub(crate) fn inside(&self, tlv: &Tlv) -> Reader<'a> {
        Reader { buf: self.buf, pos: tlv.value.start, end: tlv.value.end }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    pub(crate) fn buf(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.buf[self.pos])
    }

    pub(crate) fn finish(&self) -> Result<(), TlvError> {
        if self.is_empty() { Ok(()) } else { Err(TlvError::TrailingData) }
    }

    /// Reads the next TLV, whatever its tag.
    pub(crate) fn read_any(&mut self) -> Result<Tlv, TlvError> {
        let start = self.pos;
        let rest = self.buf.get(start..self.end).ok_or(TlvError::Truncated)?;
        let (&tag, after_tag) = rest.split_first().ok_or(TlvError::Truncated)?;
        let mut header = 1usize;
        if tag & 0x1f == 0x1f {
            // High tag number: base-128 continuation bytes.
            let n = after_tag.iter().position(|b| b & 0x80 == 0).ok_or(TlvError::Truncated)? + 1;
            if n > 5 {
                return Err(TlvError::BadTag);
            }
            header += n;
        }
        let first = *rest.get(header).ok_or(TlvError::Truncated)?;
        header += 1;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(TlvError::BadLength);
            }
            let digits = rest.get(header..header + n).ok_or(TlvError::Truncated)?;
            let len = digits.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            // DER: minimal length encoding.
            if digits[0] == 0 || len < 0x80 {
                return Err(TlvError::BadLength);
            }
            header += n;
            len
        };
        if len > rest.len() - header {
            return Err(TlvError::Truncated);
        }
        let value_start = start + header;
        let value_end = value_start + len;
        self.pos = value_end;
        Ok(Tlv { tag, whole: start..value_end, value: value_start..value_end })
    }

    /// Reads the next TLV and checks its tag.
    pub(crate) fn read(&mut self, expected: u8) -> Result<Tlv, TlvError> {
        let found = self.peek_tag().ok_or(TlvError::Truncated)?;
        if found != expected {
            return Err(TlvError::UnexpectedTag { expected, found });
        }
        self.read_any()
    }

    /// Reads the next TLV if it has the tag `tag`.
    pub(crate) fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv>, TlvError> {
        if self.peek_tag() == Some(tag) { self.read_any().map(Some) } else { Ok(None) }
    }
}

/// DER tags used here.
pub(crate) mod tag {
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
}

/// Renders an OBJECT IDENTIFIER's value bytes as dotted decimal. `None` when malformed (empty, a
/// non-minimal or unterminated arc, or an arc beyond 128 bits).
pub(crate) fn oid_to_string(value: &[u8]) -> Option<String> {
    use std::fmt::Write as _;
    if value.is_empty() || value[value.len() - 1] & 0x80 != 0 {
        return None;
    }
    let mut out = String::with_capacity(value.len() * 3);
    let mut arc: u128 = 0;
    let mut first = true;
    let mut arc_start = true;
    for &b in value {
        if arc_start && b == 0x80 {
            return None; // non-minimal
        }
        arc_start = false;
        if arc > (u128::MAX >> 7) {
            return None;
        }
        arc = (arc << 7) | u128::from(b & 0x7f);
        if b & 0x80 == 0 {
            if first {
                let (x, y) = match arc {
                    0..=39 => (0, arc),
                    40..=79 => (1, arc - 40),
                    _ => (2, arc - 80),
                };
                let _ = write!(out, "{x}.{y}");
                first = false;
            } else {
                let _ = write!(out, ".{arc}");
            }
            arc = 0;
            arc_start = true;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut r = Reader::new(&[0x04, 0x02, 0xaa, 0xbb]);
        let t = r.read(tag::OCTET_STRING).unwrap();
        assert_eq!(t.value, 2..4);
        assert!(r.finish().is_ok());

        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(0u8, 0x80));
        let mut r = Reader::new(&long);
        assert_eq!(r.read_any().unwrap().value, 3..131);
    }

    #[test]
    fn refuses_bad_lengths() {
        // Non-minimal long form.
        assert_eq!(Reader::new(&[0x04, 0x81, 0x01, 0x00]).read_any(), Err(TlvError::BadLength));
        // Indefinite.
        assert_eq!(Reader::new(&[0x30, 0x80, 0x00, 0x00]).read_any(), Err(TlvError::BadLength));
        // Past the end.
        assert_eq!(Reader::new(&[0x04, 0x05, 0x00]).read_any(), Err(TlvError::Truncated));
        assert_eq!(Reader::new(&[0x04]).read_any(), Err(TlvError::Truncated));
        assert_eq!(Reader::new(&[]).read_any(), Err(TlvError::Truncated));
        assert_eq!(Reader::new(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]).read_any(), Err(TlvError::Truncated));
    }

    #[test]
    fn oids() {
        assert_eq!(oid_to_string(&[0x55, 0x04, 0x03]).unwrap(), "2.5.4.3");
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).unwrap(),
            "1.2.840.113549.1.9.1"
        );
        assert_eq!(oid_to_string(&[0x29, 0x01, 0x02, 0x02, 0x03]).unwrap(), "1.1.1.2.2.3");
        assert_eq!(oid_to_string(&[0x00]).unwrap(), "0.0");
        assert_eq!(oid_to_string(&[0x88, 0x37]).unwrap(), "2.999");
        assert!(oid_to_string(&[]).is_none());
        assert!(oid_to_string(&[0x55, 0x84]).is_none());
        assert!(oid_to_string(&[0x55, 0x80, 0x01]).is_none());
    }
}
