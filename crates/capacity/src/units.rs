//! Decimal units, as the seed counts them (GB = 10^9 B, MB = 10^6 B), and the number formats
//! every renderer shares, so a figure reads the same in a table, a formula and a verdict.

/// Bytes in a decimal megabyte.
pub const MB: f64 = 1e6;
/// Bytes in a decimal gigabyte.
pub const GB: f64 = 1e9;
/// Seconds in a day, for turning requests per day into requests per second.
pub const SECONDS_PER_DAY: f64 = 86_400.0;

/// A count with thousands separators, rounded to the nearest integer; "unlimited" for infinity.
pub fn count(x: f64) -> String {
    if x.is_infinite() {
        return "unlimited".to_string();
    }
    if x.is_nan() {
        return "n/a".to_string();
    }
    let rounded = x.round();
    let grouped = group(&format!("{}", rounded.abs() as u128));
    if rounded < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// Rounds down, forgiving floating-point error just below an integer (3e9 / 1.5e6 is 2000,
/// and 16 / 4e-5 is 400,000, not 399,999); saturates at `u64::MAX` for infinity.
pub fn floor_count(x: f64) -> u64 {
    if !x.is_finite() {
        return u64::MAX;
    }
    (x * (1.0 + 1e-9)).floor().max(0.0) as u64
}

/// [`count`] of [`floor_count`]: how many whole tenants a limit allows, as text.
pub fn count_floor(x: f64) -> String {
    if x.is_finite() {
        count(floor_count(x) as f64)
    } else {
        count(x)
    }
}

/// Inserts thousands separators into a string of digits.
fn group(digits: &str) -> String {
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or(""))
        .collect();
    groups.join(",")
}

/// A number with at most `digits` significant digits, trailing zeros trimmed; large values get
/// thousands separators.
pub fn sig(x: f64, digits: i32) -> String {
    if x.is_infinite() || x.is_nan() {
        return count(x);
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let magnitude = x.abs().log10().floor() as i32;
    if magnitude >= digits - 1 {
        let scale = 10f64.powi(magnitude + 1 - digits);
        return count((x / scale).round() * scale);
    }
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{:.decimals$}", x.abs());
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let sign = if x < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{}", group(int))
    } else {
        format!("{sign}{}.{frac}", group(int))
    }
}

/// US dollars: whole dollars with separators at $100 and above, cents from $1, and at least
/// two significant digits below $1 (`$0.010`, `$0.0016`).
pub fn usd(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let a = x.abs();
    let body = if a >= 100.0 {
        count(a)
    } else if a >= 1.0 {
        if (a - a.round()).abs() < 0.005 {
            format!("{}", a.round())
        } else {
            format!("{a:.2}")
        }
    } else if a == 0.0 {
        "0".to_string()
    } else {
        let decimals = ((-a.log10()).ceil() as usize + 1).max(2);
        let text = format!("{a:.decimals$}");
        // Keep the seed's "$0.010" but write "$0.001", not "$0.0010".
        let mut text = text.as_str();
        while text.len() > "0.000".len() && text.ends_with('0') {
            text = &text[..text.len() - 1];
        }
        text.to_string()
    };
    if x < 0.0 {
        format!("-${body}")
    } else {
        format!("${body}")
    }
}

/// A byte amount in the largest decimal unit that keeps it at or above 1 (`50 GB`, `1.5 MB`).
pub fn bytes(x: f64) -> String {
    if !x.is_finite() {
        return count(x);
    }
    const UNITS: [(f64, &str); 5] = [
        (1e15, "PB"),
        (1e12, "TB"),
        (GB, "GB"),
        (MB, "MB"),
        (1e3, "kB"),
    ];
    for (size, name) in UNITS {
        if x.abs() >= size {
            return format!("{} {name}", sig(x / size, 4));
        }
    }
    format!("{} B", sig(x, 4))
}

/// `1 year`, `3 years`: a count and a noun, plural unless the count is exactly one.
pub fn plural(x: f64, noun: &str) -> String {
    if x == 1.0 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", sig(x, 3))
    }
}

/// A fraction as a percentage: one decimal, two above 99% so 99.96% does not print as 100%
/// (`0.998` -> `99.8%`, `0.25` -> `25%`, `0.9996` -> `99.96%`).
pub fn percent(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let decimals = if x > 0.99 && x < 1.0 { 2 } else { 1 };
    let text = format!("{:.decimals$}", x * 100.0);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(5000.0), "5,000");
        assert_eq!(count(1_000_000.0), "1,000,000");
        assert_eq!(count(999.4), "999");
        assert_eq!(count(f64::INFINITY), "unlimited");
        assert_eq!(count_floor(16.0 / 4e-5), "400,000");
        assert_eq!(count_floor(1666.67), "1,666");
    }

    #[test]
    fn significant_digits_trim_zeros() {
        assert_eq!(sig(0.84, 3), "0.84");
        assert_eq!(sig(0.00025, 3), "0.00025");
        assert_eq!(sig(1.0, 3), "1");
        assert_eq!(sig(174_762.7, 3), "175,000");
        assert_eq!(sig(2.0 / 3.0, 3), "0.667");
        assert_eq!(sig(7200.0, 7), "7,200");
        assert_eq!(sig(1234.5, 6), "1,234.5");
        assert_eq!(sig(-0.5, 3), "-0.5");
    }

    #[test]
    fn dollars_match_the_seed_style() {
        assert_eq!(usd(15.0), "$15");
        assert_eq!(usd(1000.0), "$1,000");
        assert_eq!(usd(0.01), "$0.010");
        assert_eq!(usd(0.0016), "$0.0016");
        assert_eq!(usd(0.001), "$0.001");
        assert_eq!(usd(0.0093), "$0.0093");
        assert_eq!(usd(0.5), "$0.50");
        assert_eq!(usd(9.99), "$9.99");
    }

    #[test]
    fn bytes_are_decimal() {
        assert_eq!(bytes(50e9), "50 GB");
        assert_eq!(bytes(1.5e6), "1.5 MB");
        assert_eq!(bytes(500e9), "500 GB");
        assert_eq!(bytes(0.0), "0 B");
    }

    #[test]
    fn percent_has_one_decimal() {
        assert_eq!(percent(0.998), "99.8%");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(percent(0.9996), "99.96%");
        assert_eq!(percent(0.981), "98.1%");
    }
}
