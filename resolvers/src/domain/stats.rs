//! Goodness-of-fit arithmetic for checking samplers as statistics (STYLE rule 13).
//! Used by the unit tests, the HTTP suite and the benchmarks; nothing on a request path.

/// Pearson's chi-square statistic of observed counts against expected probabilities.
pub fn chi_square(observed: &[u64], expected_p: &[f64]) -> f64 {
    let n: u64 = observed.iter().sum();
    observed
        .iter()
        .zip(expected_p)
        .map(|(&o, &p)| {
            let e = p * n as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

/// Upper 0.1% point of the chi-square distribution with `df` degrees of freedom
/// (Wilson–Hilferty approximation; within 1% of tables for df ≥ 10).
pub fn chi_square_critical_999(df: usize) -> f64 {
    let df = df as f64;
    let z = 3.090_232; // standard normal 0.999 quantile
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + z * a.sqrt()).powi(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_values_match_tables() {
        // Published upper 0.1% points: df=10 → 29.59, df=20 → 45.31, df=40 → 73.40.
        assert!((chi_square_critical_999(10) - 29.59).abs() < 0.3);
        assert!((chi_square_critical_999(20) - 45.31).abs() < 0.4);
        assert!((chi_square_critical_999(40) - 73.40).abs() < 0.5);
    }

    #[test]
    fn chi_square_is_zero_for_a_perfect_fit_and_grows_with_misfit() {
        assert_eq!(chi_square(&[25, 75], &[0.25, 0.75]), 0.0);
        assert!((chi_square(&[50, 50], &[0.25, 0.75]) - (625.0 / 25.0 + 625.0 / 75.0)).abs() < 1e-9);
    }
}
