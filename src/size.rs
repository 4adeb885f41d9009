//! Byte sizes as the settings take them: a number of bytes, or a number with `KiB`, `MiB` or
//! `GiB` (powers of 1,024), with or without a space before the unit.

/// Parses `12345`, `64KiB`, `256 MiB`, `4GiB`; `None` for anything else (decimal points, `KB`,
/// a size past `u64`).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (number, unit) = text.split_at(digits);
    let scale: u64 = match unit.trim_start() {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_bytes_and_binary_units() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("256 MiB"), Some(268_435_456));
        assert_eq!(parse_size(" 4GiB "), Some(4 << 30));
        for bad in [
            "",
            "MiB",
            "1.5GiB",
            "4GB",
            "4 gib",
            "-1",
            "1 KiB extra",
            "99999999999GiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
