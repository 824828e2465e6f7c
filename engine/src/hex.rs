//! Lowercase hex of ids, and hex digits back to bytes: for the span store's
//! text ids and W3C `traceparent`s, both on every message's path, so a table
//! lookup per byte rather than the formatting machinery.

/// `N` bytes from `2N` hex digits, uppercase ones too when `any_case`;
/// `None` for anything else.
pub(crate) fn decode_hex<const N: usize>(digits: &[u8], any_case: bool) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    // A table lookup per digit, checked once at the end: this decodes every
    // delivery's `traceparent`.
    let nibbles = if any_case {
        &NIBBLES_ANY_CASE
    } else {
        &NIBBLES_LOWER
    };
    let mut out = [0u8; N];
    let mut seen = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (nibbles[usize::from(pair[0])], nibbles[usize::from(pair[1])]);
        seen |= high | low;
        *byte = high << 4 | low;
    }
    (seen & NOT_HEX == 0).then_some(out)
}

/// What [`NIBBLES_LOWER`] and [`NIBBLES_ANY_CASE`] hold for a byte that is
/// not a hex digit: a bit no digit's value has.
const NOT_HEX: u8 = 0x10;

/// The value of every byte as a hex digit, [`NOT_HEX`] where it is none.
const fn nibbles(any_case: bool) -> [u8; 256] {
    let mut table = [NOT_HEX; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' if any_case => b - b'A' + 10,
            _ => NOT_HEX,
        };
        c += 1;
    }
    table
}

const NIBBLES_LOWER: [u8; 256] = nibbles(false);
const NIBBLES_ANY_CASE: [u8; 256] = nibbles(true);

/// The two lowercase hex digits of every byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [DIGITS[b >> 4], DIGITS[b & 0xf]];
        b += 1;
    }
    pairs
};

/// Lowercase hex of `bytes` into `out`, which holds two digits per byte
/// (ids as text: here, and in the telemetry's `traceparent`s).
pub(crate) fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut digits = vec![0u8; 2 * bytes.len()];
    hex_into(&mut digits, bytes);
    String::from_utf8(digits).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_digits_only_and_uppercase_only_when_asked() {
        assert_eq!(decode_hex::<2>(b"0aff", false), Some([0x0a, 0xff]));
        assert_eq!(decode_hex::<2>(b"09af", false), Some([0x09, 0xaf]));
        assert_eq!(decode_hex::<2>(b"0AFF", false), None);
        assert_eq!(decode_hex::<2>(b"0AfF", true), Some([0x0a, 0xff]));
        // Every byte that is not a digit is refused, in either place.
        let digits: &[u8] = b"0123456789abcdefABCDEF";
        for b in 0..=255u8 {
            let expected = digits.contains(&b).then(|| {
                let v = char::from(b).to_digit(16).unwrap() as u8;
                [v << 4 | v]
            });
            assert_eq!(decode_hex::<1>(&[b, b], true), expected, "byte {b}");
            assert_eq!(
                decode_hex::<1>(&[b'0', b], true).is_some(),
                expected.is_some()
            );
            assert_eq!(
                decode_hex::<1>(&[b, b'0'], true).is_some(),
                expected.is_some()
            );
        }
        // Lengths other than two digits a byte.
        assert_eq!(decode_hex::<2>(b"0af", false), None);
        assert_eq!(decode_hex::<2>(b"0aff0", false), None);
    }

    #[test]
    fn hex_writes_two_lowercase_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0a, 0xff, 0x7b]), "000aff7b");
        assert_eq!(hex(&[]), "");
    }
}
