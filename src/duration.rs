//! ISO 8601 durations (`P1D`, `PT1H30M`), the format Batch constraints and our settings use.
//!
//! Only days, hours, minutes and whole seconds: years and months have no fixed length, and
//! Batch does not need them.

use std::time::Duration;

/// Parses `P[nD][T[nH][nM][nS]]`; `None` for anything else, including an empty `P`.
pub fn parse_iso8601(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut seconds: u64 = 0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut number = String::new();
        let mut last_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let position = units.iter().position(|(u, _)| *u == c)?;
            if number.is_empty() || position < last_unit {
                return None;
            }
            last_unit = position + 1;
            let n: u64 = number.parse().ok()?;
            seconds = seconds.checked_add(n.checked_mul(units[position].1)?)?;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    take(date, &[('D', 86_400)])?;
    if let Some(time) = time {
        take(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    any.then(|| Duration::from_secs(seconds))
}

/// Formats whole seconds as the shortest `P…` form (`P1D`, `PT1H`, `PT90S` stays `PT1M30S`).
pub fn format_iso8601(duration: Duration) -> String {
    let mut s = duration.as_secs();
    if s == 0 {
        return "PT0S".into();
    }
    let days = s / 86_400;
    s %= 86_400;
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if s > 0 {
        out.push('T');
        for (unit, size) in [('H', 3600), ('M', 60), ('S', 1)] {
            if s >= size {
                out.push_str(&format!("{}{unit}", s / size));
                s %= size;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_we_accept() {
        assert_eq!(parse_iso8601("PT1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_iso8601("P1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(
            parse_iso8601("P1DT2H3M4S"),
            Some(Duration::from_secs(93_784))
        );
        assert_eq!(parse_iso8601("PT90S"), Some(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in [
            "", "P", "PT", "1H", "PT1", "PTH", "PT1M1H", "P1Y", "PT1.5S", "PT-1S", "P1H",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for secs in [1, 59, 60, 3600, 3661, 86_400, 90_061, 12 * 3600] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_iso8601(&format_iso8601(d)), Some(d));
        }
        assert_eq!(format_iso8601(Duration::from_secs(3600)), "PT1H");
        assert_eq!(format_iso8601(Duration::from_secs(86_400)), "P1D");
        assert_eq!(format_iso8601(Duration::ZERO), "PT0S");
    }
}
