//! Median and spread over repeats.

use serde_json::{json, Value};

/// `{"median": m, "mean": x, "min": a, "max": b, "n": count, "samples": [...]}` of `samples` (rounded to
/// 3 decimals), or `null` when there is none.
pub(crate) fn summary(samples: &[f64]) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    #[allow(clippy::cast_precision_loss)]
    let mean = sorted.iter().sum::<f64>() / n as f64;
    json!({
        "median": round(median),
        "mean": round(mean),
        "min": round(sorted[0]),
        "max": round(sorted[n - 1]),
        "n": n,
        "samples": samples.iter().map(|s| round(*s)).collect::<Vec<_>>(),
    })
}

/// The median of a summary made by [`summary`].
pub(crate) fn median(summary: &Value) -> Option<f64> {
    summary.get("median")?.as_f64()
}

/// The mean of a summary made by [`summary`].
pub(crate) fn mean(summary: &Value) -> Option<f64> {
    summary.get("mean")?.as_f64()
}

/// Rounds to 3 decimals for the report.
pub(crate) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = summary(&[3.0, 1.0, 2.0]);
        assert_eq!(median(&s), Some(2.0));
        assert_eq!(s["min"], 1.0);
        assert_eq!(s["max"], 3.0);
        assert_eq!(mean(&s), Some(2.0));
        assert_eq!(median(&summary(&[1.0, 2.0, 3.0, 10.0])), Some(2.5));
        assert_eq!(summary(&[]), Value::Null);
    }
}
