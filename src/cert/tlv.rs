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

/// The dotted form of an OID's content bytes (`None` when malformed: empty, truncated, or not minimally encoded).
///
/// Arcs may be of any length, as X.690 allows and .NET prints them (a UUID arc under `2.25` is a 128-bit number,
/// and larger ones exist): an arc that does not fit in a `u128` is converted digit by digit.
pub(crate) fn oid_to_string(value: &[u8]) -> Option<String> {
    use std::fmt::Write as _;
    if value.is_empty() || value[value.len() - 1] & 0x80 != 0 {
        return None;
    }
    let mut out = String::with_capacity(value.len() * 3);
    let mut first = true;
    for arc in value.split_inclusive(|b| b & 0x80 == 0) {
        if arc[0] == 0x80 {
            return None; // non-minimal
        }
        // 18 groups of 7 bits fit in a u128.
        if arc.len() <= 18 {
            let n = arc.iter().fold(0u128, |n, b| (n << 7) | u128::from(b & 0x7f));
            if first {
                let (x, y) = match n {
                    0..=39 => (0, n),
                    40..=79 => (1, n - 40),
                    _ => (2, n - 80),
                };
                let _ = write!(out, "{x}.{y}");
            } else {
                let _ = write!(out, ".{n}");
            }
        } else {
            let mut n = BigArc::default();
            for b in arc {
                n.shift_in(b & 0x7f);
            }
            if first {
                // At least 2^126: always under the arc 2.
                n.subtract(80);
                out.push_str("2.");
            } else {
                out.push('.');
            }
            n.write_decimal(&mut out);
        }
        first = false;
    }
    Some(out)
}

/// A non-negative number of any size, in base-10^9 limbs, least significant first.
#[derive(Default)]
struct BigArc(Vec<u32>);

const LIMB: u64 = 1_000_000_000;

impl BigArc {
    /// `self = self * 128 + bits`.
    fn shift_in(&mut self, bits: u8) {
        let mut carry = u64::from(bits);
        for limb in &mut self.0 {
            let v = u64::from(*limb) * 128 + carry;
            *limb = (v % LIMB) as u32;
            carry = v / LIMB;
        }
        while carry > 0 {
            self.0.push((carry % LIMB) as u32);
            carry /= LIMB;
        }
    }

    /// `self -= n`, for `self >= n`.
    fn subtract(&mut self, n: u32) {
        let mut borrow = u64::from(n);
        for limb in &mut self.0 {
            if borrow == 0 {
                break;
            }
            let v = u64::from(*limb);
            if v >= borrow {
                *limb = (v - borrow) as u32;
                borrow = 0;
            } else {
                *limb = (v + LIMB - borrow) as u32;
                borrow = 1;
            }
        }
        while self.0.len() > 1 && self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn write_decimal(&self, out: &mut String) {
        use std::fmt::Write as _;
        let mut limbs = self.0.iter().rev();
        match limbs.next() {
            Some(top) => {
                let _ = write!(out, "{top}");
            }
            None => out.push('0'),
        }
        for limb in limbs {
            let _ = write!(out, "{limb:09}");
        }
    }
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
        assert!(oid_to_string(&[0x80, 0x01]).is_none());
    }

    /// Encodes a dotted OID's arcs (given as decimal strings of any length) the X.690 way, independently of the
    /// decoder: repeated division of the decimal string by 128.
    fn encode_arcs(arcs: &[&str]) -> Vec<u8> {
        fn divmod128(decimal: &str) -> (String, u8) {
            let mut q = String::new();
            let mut r: u32 = 0;
            for d in decimal.bytes() {
                let cur = r * 10 + u32::from(d - b'0');
                q.push(char::from(b'0' + (cur / 128) as u8));
                r = cur % 128;
            }
            let q = q.trim_start_matches('0').to_owned();
            (q, r as u8)
        }
        fn add(decimal: &str, n: u32) -> String {
            let mut digits: Vec<u32> = decimal.bytes().map(|d| u32::from(d - b'0')).collect();
            let mut carry = n;
            for d in digits.iter_mut().rev() {
                let v = *d + carry;
                *d = v % 10;
                carry = v / 10;
            }
            let mut s: String = carry.to_string().trim_start_matches('0').to_owned();
            s.extend(digits.iter().map(|d| char::from(b'0' + *d as u8)));
            s
        }
        let first = add(arcs[1], arcs[0].parse::<u32>().unwrap() * 40);
        let mut out = Vec::new();
        for arc in std::iter::once(first.as_str()).chain(arcs[2..].iter().copied()) {
            let mut groups = Vec::new();
            let mut rest = arc.trim_start_matches('0').to_owned();
            if rest.is_empty() {
                groups.push(0);
            }
            while !rest.is_empty() {
                let (q, r) = divmod128(&rest);
                groups.push(r);
                rest = q;
            }
            for (i, g) in groups.iter().enumerate().rev() {
                out.push(if i > 0 { g | 0x80 } else { *g });
            }
        }
        out
    }

    #[test]
    fn oid_arcs_of_any_length() {
        // .NET prints this attribute type as `OID.2.25.1361129467683753853853498429727072858169` (an arc above
        // 2^128, from a certificate .NET reads).
        let arcs = ["2", "25", "1361129467683753853853498429727072858169"];
        assert_eq!(oid_to_string(&encode_arcs(&arcs)).unwrap(), arcs.join("."));
        // Limits around u128, and arcs with inner zero limbs.
        for arcs in [
            ["1", "2", "340282366920938463463374607431768211455"],
            ["1", "2", "340282366920938463463374607431768211456"],
            ["2", "5", "1000000000000000000000000000000000000000000000000000000000000001"],
            ["0", "39", "170141183460469231731687303715884105728"],
        ] {
            assert_eq!(oid_to_string(&encode_arcs(&arcs)).unwrap(), arcs.join("."), "{arcs:?}");
        }
        // A first arc that is itself huge stays under 2.
        let huge = ["2", "1361129467683753853853498429727072858169", "3"];
        assert_eq!(oid_to_string(&encode_arcs(&huge)).unwrap(), huge.join("."));
        // Small first arcs still give 0.x and 1.x; the encoder is checked against a known value.
        assert_eq!(encode_arcs(&["1", "2", "840", "113549"]), [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]);
    }

    proptest::proptest! {
        #[test]
        fn oid_arcs_round_trip(
            first in 0u8..3,
            second in "[1-9][0-9]{0,45}|0",
            rest in proptest::collection::vec("[1-9][0-9]{0,60}|0", 0..5),
        ) {
            // Under 0 and 1 the second arc is at most 39.
            let second = if first < 2 { (second.len() % 40).to_string() } else { second };
            let first = first.to_string();
            let mut arcs = vec![first.as_str(), second.as_str()];
            arcs.extend(rest.iter().map(String::as_str));
            proptest::prop_assert_eq!(oid_to_string(&encode_arcs(&arcs)).unwrap(), arcs.join("."));
        }
    }
}
