//! Prometheus's `native_histograms.test` cases (promql/promqltest/testdata), run by `script`.

use super::script;

#[tokio::test]
async fn upstream_native_histogram_cases_pass() {
    let failures = script::run(include_str!("testdata/native_histograms.test")).await;
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
