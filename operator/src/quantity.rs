//! Kubernetes resource quantities compared by value.
//!
//! The API server stores built-in objects' quantities in canonical form (`0.5` becomes `500m`,
//! `0.5Gi` becomes `512Mi`), while a HexCoreService (a custom resource) keeps what its author
//! wrote. Comparing the strings would see drift on every reconcile and re-apply forever, so the
//! apply layer compares quantities as numbers.

/// The value of a quantity in units of 10⁻⁹ (the finest precision Kubernetes keeps), or `None`
/// when `text` is not a quantity. Grammar: `<signed decimal>[<suffix>]` with the binary suffixes
/// `Ki Mi Gi Ti Pi Ei`, the decimal suffixes `n u m k M G T P E`, or an exponent `e<int>`/`E<int>`.
pub fn nano_value(text: &str) -> Option<i128> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (negative, digits) = match number.as_bytes().first()? {
        b'-' => (true, &number[1..]),
        b'+' => (false, &number[1..]),
        _ => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
        || fraction.len() > 30
        || whole.len() > 30
    {
        return None;
    }
    // mantissa × 10^(-fraction digits), then scaled by the suffix.
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    let mut exponent10: i32 = -(fraction.len() as i32);
    let mut multiplier: i128 = 1;
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = "KMGTPE".find(&suffix[..1])? as u32 + 1;
            multiplier = 1i128 << (10 * power);
        }
        "n" => exponent10 -= 9,
        "u" => exponent10 -= 6,
        "m" => exponent10 -= 3,
        "k" => exponent10 += 3,
        "M" => exponent10 += 6,
        "G" => exponent10 += 9,
        "T" => exponent10 += 12,
        "P" => exponent10 += 15,
        "E" => exponent10 += 18,
        s if s.starts_with(['e', 'E']) => exponent10 += s[1..].parse::<i32>().ok()?,
        _ => return None,
    }
    // To nano units; precision below 1n is dropped (the API server rounds it up; equal enough).
    exponent10 += 9;
    let scaled = if exponent10 >= 0 {
        mantissa.checked_mul(10i128.checked_pow(exponent10 as u32)?)?
    } else {
        mantissa / 10i128.checked_pow(exponent10.unsigned_abs())?
    };
    let value = scaled.checked_mul(multiplier)?;
    Some(if negative { -value } else { value })
}

/// True when both strings are quantities of the same value.
pub fn same_quantity(a: &str, b: &str) -> bool {
    a == b || matches!((nano_value(a), nano_value(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_written_forms_are_equal() {
        for (written, canonical) in [
            ("0.5", "500m"),
            ("0.25", "250m"),
            ("1000m", "1"),
            ("0.5Gi", "512Mi"),
            ("0.0625Gi", "64Mi"),
            ("1024Ki", "1Mi"),
            ("1e3", "1k"),
            ("1.5", "1500m"),
            ("128974848", "123Mi"),
            ("+2", "2"),
        ] {
            assert!(same_quantity(written, canonical), "{written} == {canonical}");
        }
    }

    #[test]
    fn different_values_and_non_quantities_differ() {
        assert!(!same_quantity("500m", "0.6"));
        assert!(!same_quantity("1Gi", "1G"), "binary and decimal giga differ");
        assert!(!same_quantity("1", "-1"));
        assert!(!same_quantity("abc", "abd"));
        assert_eq!(nano_value("1Xi"), None);
        assert_eq!(nano_value(""), None);
        assert_eq!(nano_value("."), None);
        assert_eq!(nano_value("1.2.3"), None);
        assert_eq!(nano_value("100m"), Some(100_000_000));
        assert_eq!(nano_value("2Ki"), Some(2048 * 1_000_000_000));
    }
}
