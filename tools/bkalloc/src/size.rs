// SPDX-License-Identifier: GPL-2.0

//! Sizes on the command line and in scenario files: `65536`, `64k`, `64KiB`, `1M`, `2g`.

/// Parses a byte size with an optional binary suffix (k, m, g, t; "iB"/"B" optional).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("bad size '{s}'"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("bad size suffix in '{s}' (use k, m, g or t)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size '{s}' too large"))
}

/// Formats a byte count for people: `64 KiB`, `2.9 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024 && v.is_multiple_of(1024) && u < UNITS.len() - 1 {
        v /= 1024;
        u += 1;
    }
    if v < 10240 || u == UNITS.len() - 1 {
        return format!("{v} {}", UNITS[u]);
    }
    let mut x = bytes as f64;
    let mut u = 0;
    while x >= 1024.0 && u < UNITS.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("64q").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("99999999999t").is_err());
        assert_eq!(human(65536), "64 KiB");
        assert_eq!(human(3 * (1 << 30) + 1), "3.0 GiB");
    }
}
