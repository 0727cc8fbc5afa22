//! JSON output: the model's result types serialised, with every float rounded to
//! [`SIGNIFICANT_DIGITS`] on the way out, so binary noise (`0.05000000000000001`,
//! `1999.9999999999998`) never reaches a reader. The model itself keeps full precision.

use serde_json::{Number, Value};

/// Significant digits kept in JSON floats: well above any input's precision, and below the
/// ~16 of an f64, where rounding error from a few operations shows.
pub const SIGNIFICANT_DIGITS: usize = 12;

/// Pretty-printed JSON of `value` with floats rounded, ending in a newline; errors only if
/// serde_json cannot serialise (it always can for a `Value`).
pub fn to_text(mut value: Value) -> Result<String, serde_json::Error> {
    round_floats(&mut value);
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

/// Rounds every float in `value` (recursively) to [`SIGNIFICANT_DIGITS`]; integers untouched.
pub fn round_floats(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(rounded) = n.as_f64().map(round_sig).and_then(Number::from_f64) {
                *n = rounded;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(round_floats),
        Value::Object(map) => map.values_mut().for_each(round_floats),
        _ => {}
    }
}

/// `x` to [`SIGNIFICANT_DIGITS`] significant digits (via decimal scientific notation, so the
/// result is the nearest f64 to the rounded decimal); non-finite values unchanged.
fn round_sig(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let text = format!("{:.*e}", SIGNIFICANT_DIGITS - 1, x);
    text.parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binary_noise_is_rounded_away_and_integers_kept() {
        let text = to_text(json!({
            "price": 0.05000000000000001,
            "list": [1999.9999999999998, 0.7999999999999999, 174762.66666666666],
            "count": u64::MAX,
            "small": 1.5e-7,
        }))
        .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["price"], json!(0.05));
        assert_eq!(v["list"], json!([2000.0, 0.8, 174762.666667]));
        assert_eq!(v["count"], json!(u64::MAX));
        assert_eq!(v["small"], json!(1.5e-7));
    }
}
