//! Algebraic properties checked on random data.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// Up to 24 series `m{x=<group>,y=<i>}` with small integer values (so every sum is exact).
fn series_strategy() -> impl Strategy<Value = Vec<(u8, i32)>> {
    proptest::collection::vec((0u8..4, -1000i32..1000), 1..24)
}

fn fixture_engine(series: &[(u8, i32)]) -> Engine {
    let texts: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(i, (x, _))| format!(r#"m{{x="{x}",y="{i}"}}"#))
        .collect();
    let samples: Vec<[(i64, f64); 1]> = series.iter().map(|&(_, v)| [(0, f64::from(v))]).collect();
    let fixtures: Vec<(&str, &[(i64, f64)])> = texts
        .iter()
        .zip(&samples)
        .map(|(t, s)| (t.as_str(), s.as_slice()))
        .collect();
    engine(&fixtures)
}

fn run(e: &Engine, q: &str) -> Vec<(String, f64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    sorted_rows(&rt.block_on(instant(e, q, 0)).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sum_by_group_is_the_sum_of_its_parts(series in series_strategy()) {
        let e = fixture_engine(&series);
        let mut want: BTreeMap<u8, f64> = BTreeMap::new();
        for &(x, v) in &series {
            *want.entry(x).or_default() += f64::from(v);
        }
        let want: Vec<(String, f64)> = want.into_iter().map(|(x, v)| row(&format!(r#"{{x="{x}"}}"#), v)).collect();
        prop_assert_eq!(run(&e, "sum by (x) (m)"), want.clone());
        // `without` the other labels is the same grouping.
        prop_assert_eq!(run(&e, "sum without (y) (m)"), want);
        // And the groups add up to the total.
        let total: f64 = series.iter().map(|&(_, v)| f64::from(v)).sum();
        prop_assert_eq!(run(&e, "sum(sum by (x) (m))"), vec![row("{}", total)]);
        prop_assert_eq!(run(&e, "count(m)"), vec![row("{}", series.len() as f64)]);
    }

    #[test]
    fn adding_zero_only_drops_the_name(series in series_strategy()) {
        let e = fixture_engine(&series);
        let original = run(&e, "m");
        let plus_zero = run(&e, "m + 0");
        prop_assert_eq!(original.len(), plus_zero.len());
        for (a, b) in original.iter().zip(&plus_zero) {
            prop_assert_eq!(a.0.strip_prefix('m'), Some(b.0.as_str()));
            prop_assert_eq!(a.1, b.1);
        }
        prop_assert_eq!(run(&e, "m + 0"), run(&e, "0 + m"));
        prop_assert_eq!(run(&e, "m - m").into_iter().map(|r| r.1).collect::<Vec<_>>(), vec![0.0; series.len()]);
    }

    #[test]
    fn set_operators_are_idempotent(series in series_strategy()) {
        let e = fixture_engine(&series);
        let original = run(&e, "m");
        prop_assert_eq!(run(&e, "m and m"), original.clone());
        prop_assert_eq!(run(&e, "m or m"), original.clone());
        prop_assert!(run(&e, "m unless m").is_empty());
        // topk over everything returns everything, bottomk(1) the minimum.
        prop_assert_eq!(run(&e, "topk(1000, m)"), original);
        let min = series.iter().map(|&(_, v)| v).min().unwrap();
        prop_assert_eq!(run(&e, "bottomk(1, m)")[0].1, f64::from(min));
    }
}
