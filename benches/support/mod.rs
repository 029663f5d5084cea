//! What the benches share: reading criterion's estimate of a benchmark to print ratios in the same run.

/// The estimate criterion prints (the slope; the mean when there is none) of benchmark `id`, in nanoseconds.
pub fn estimate_ns(id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let text = std::fs::read_to_string(format!("{dir}/criterion/{}/new/estimates.json", id.replace('/', "_"))).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    // The slope is what criterion prints; the mean is skewed by outliers.
    v["slope"]["point_estimate"].as_f64().or_else(|| v["mean"]["point_estimate"].as_f64())
}
