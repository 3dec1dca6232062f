// SPDX-License-Identifier: GPL-2.0

//! Volume and member identifiers: 16 raw bytes, shown in the usual 8-4-4-4-12 hex form (the
//! name of a volume's sysfs directory).

use core::fmt;

/// A 16-byte identifier, stored on disk as is.
pub type Uuid = [u8; 16];

/// The all-zero uuid, never a valid volume or member id.
pub const NIL: Uuid = [0; 16];

/// Displays a uuid as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower case).
#[derive(Clone, Copy, Debug)]
pub struct Hyphenated<'a>(pub &'a Uuid);

impl fmt::Display for Hyphenated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Parses the hyphenated form (either case); `None` on anything else.
pub fn parse(s: &str) -> Option<Uuid> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = NIL;
    let mut nibbles = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        let byte = out.get_mut(nibbles / 2)?;
        *byte = (*byte << 4) | v;
        nibbles += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let u: Uuid = core::array::from_fn(|i| (i as u8) * 17);
        let s = format!("{}", Hyphenated(&u));
        assert_eq!(s, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(parse(&s), Some(u));
        assert_eq!(parse(&s.to_uppercase()), Some(u));
        assert_eq!(parse("00112233-4455-6677-8899-aabbccddeef"), None);
        assert_eq!(parse("0011223304455-6677-8899-aabbccddeeff"), None);
        assert_eq!(parse("00112233-4455-6677-8899-aabbccddeefg"), None);
    }
}
