//! Weights: how often an image is served relative to the others of its label.
//!
//! A weight is kept as an integer number of billionths (0 < w ≤ 1, nine decimal places).
//! Integers make the per-chunk weight sums exact: adding and later subtracting a weight
//! leaves no floating-point residue, so the chunk invariant (sums in chunk info equal the
//! image table) can be checked with `==`. DynamoDB numbers are exact decimals, so the AWS
//! backend stores the same values as decimal strings without loss.

use std::fmt;

use crate::error::{ApiError, ApiResult};

/// Billionths per unit of weight.
pub const WEIGHT_SCALE: u64 = 1_000_000_000;

/// A validated weight, 0 < w ≤ 1, in billionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u32);

impl Weight {
    /// The default weight of an upload: 0.5, as in petAPI.
    pub const DEFAULT: Weight = Weight(500_000_000);

    /// Validates a client-supplied weight. Values are rounded to nine decimal places;
    /// anything that is not finite, not positive after rounding, or above 1 is refused.
    pub fn from_f64(value: f64) -> ApiResult<Weight> {
        if !value.is_finite() {
            return Err(ApiError::BadUserInput("weight must be a finite number".into()));
        }
        if value <= 0.0 || value > 1.0 {
            return Err(ApiError::BadUserInput(format!(
                "weight must satisfy 0 < weight <= 1, got {value:?}"
            )));
        }
        let nanos = (value * WEIGHT_SCALE as f64).round() as u64;
        if nanos == 0 {
            return Err(ApiError::BadUserInput(format!(
                "weight {value:?} is below the resolution of 1e-9"
            )));
        }
        Ok(Weight(nanos as u32))
    }

    /// Rebuilds a weight read back from storage.
    pub fn from_nanos(nanos: u64) -> anyhow::Result<Weight> {
        anyhow::ensure!(
            (1..=WEIGHT_SCALE).contains(&nanos),
            "stored weight {nanos} is outside 1..=1e9 billionths"
        );
        Ok(Weight(nanos as u32))
    }

    pub fn nanos(self) -> u64 {
        u64::from(self.0)
    }

    pub fn as_f64(self) -> f64 {
        nanos_to_f64(self.nanos())
    }

    /// The exact decimal form, e.g. `0.54321`; what DynamoDB stores.
    pub fn to_decimal_string(self) -> String {
        nanos_to_decimal_string(self.nanos())
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal_string())
    }
}

/// A sum of weights in billionths, as a float for display (`totalWeight`).
pub fn nanos_to_f64(nanos: u64) -> f64 {
    nanos as f64 / WEIGHT_SCALE as f64
}

/// The exact decimal representation of a number of billionths, without trailing zeros.
pub fn nanos_to_decimal_string(nanos: u64) -> String {
    let whole = nanos / WEIGHT_SCALE;
    let frac = nanos % WEIGHT_SCALE;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses an exact decimal (as written by [`nanos_to_decimal_string`] or by DynamoDB)
/// back into billionths. Refuses more than nine decimal places rather than rounding.
pub fn decimal_string_to_nanos(text: &str) -> anyhow::Result<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    anyhow::ensure!(
        !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()),
        "not a non-negative decimal: {text:?}"
    );
    anyhow::ensure!(
        frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()),
        "more than nine decimal places or not a decimal: {text:?}"
    );
    let whole: u64 = whole.parse()?;
    let frac_nanos: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse()?
    };
    whole
        .checked_mul(WEIGHT_SCALE)
        .and_then(|w| w.checked_add(frac_nanos))
        .ok_or_else(|| anyhow::anyhow!("decimal out of range: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_outside_zero_to_one_are_refused() {
        for bad in [0.0, -0.1, 1.000001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-12] {
            let err = Weight::from_f64(bad).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT", "{bad}");
        }
    }

    #[test]
    fn weights_keep_nine_decimal_places() {
        assert_eq!(Weight::from_f64(0.54321).unwrap().nanos(), 543_210_000);
        assert_eq!(Weight::from_f64(1.0).unwrap().nanos(), WEIGHT_SCALE);
        assert_eq!(Weight::from_f64(1e-9).unwrap().nanos(), 1);
        assert_eq!(Weight::DEFAULT.as_f64(), 0.5);
    }

    #[test]
    fn decimal_strings_round_trip_exactly() {
        for nanos in [1, 10, 500_000_000, 543_210_000, WEIGHT_SCALE, 123 * WEIGHT_SCALE + 7] {
            let text = nanos_to_decimal_string(nanos);
            assert_eq!(decimal_string_to_nanos(&text).unwrap(), nanos, "{text}");
        }
        assert_eq!(nanos_to_decimal_string(543_210_000), "0.54321");
        assert_eq!(nanos_to_decimal_string(2 * WEIGHT_SCALE), "2");
        assert!(decimal_string_to_nanos("0.1234567891").is_err());
        assert!(decimal_string_to_nanos("-1").is_err());
        assert!(decimal_string_to_nanos("1e5").is_err());
    }
}
