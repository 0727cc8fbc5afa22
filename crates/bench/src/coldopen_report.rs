//! The cold-open benchmark's results: per variant and mode, the min and median over the
//! repetitions, as a text table and as JSON.

use crate::coldopen::{ColdOpen, Sample};

/// Min and median of one variant in one mode.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Variant name.
    pub variant: &'static str,
    /// Mode label (`fsync`, `crash`, `normal`).
    pub mode: &'static str,
    /// Repetitions.
    pub runs: usize,
    /// Lowest CPU µs per cycle.
    pub cpu_us_min: f64,
    /// Median CPU µs per cycle.
    pub cpu_us_median: f64,
    /// Median user CPU µs per cycle.
    pub user_us_median: f64,
    /// Median system CPU µs per cycle.
    pub sys_us_median: f64,
    /// Median wall µs per cycle.
    pub wall_us_median: f64,
}

/// Groups samples by variant and mode (first-seen order). Never fails.
pub fn summarize(samples: &[Sample]) -> Vec<Summary> {
    let mut keys: Vec<(&'static str, &'static str)> = Vec::new();
    for s in samples {
        if !keys.contains(&(s.variant, s.mode)) {
            keys.push((s.variant, s.mode));
        }
    }
    keys.into_iter()
        .map(|(variant, mode)| {
            let of: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.variant == variant && s.mode == mode)
                .collect();
            let pick = |f: fn(&Sample) -> f64| of.iter().map(|s| f(s)).collect::<Vec<_>>();
            let cpu = pick(|s| s.cpu_us);
            Summary {
                variant,
                mode,
                runs: of.len(),
                cpu_us_min: cpu.iter().copied().fold(f64::INFINITY, f64::min),
                cpu_us_median: median(cpu),
                user_us_median: median(pick(|s| s.user_us)),
                sys_us_median: median(pick(|s| s.sys_us)),
                wall_us_median: median(pick(|s| s.wall_us)),
            }
        })
        .collect()
}

/// The median (mean of the middle two for an even count; 0 for none).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One line per sample, as it is made.
pub fn sample_line(s: &Sample) -> String {
    format!(
        "{:<14} {:<6} run {}: {:>8.1} us CPU/cycle (user {:.1}, sys {:.1}), wall {:.1} us/cycle, {} cycles",
        s.variant, s.mode, s.run, s.cpu_us, s.user_us, s.sys_us, s.wall_us, s.cycles
    )
}

/// The summary table; the last column compares with `tenantd` in the same mode (or, for the
/// seed, with `tenantd` in `crash` mode, the same `synchronous`).
pub fn table(rows: &[Summary]) -> String {
    let mut out = String::from(
        "variant        mode   runs  CPU us min  CPU us med  user med  sys med  wall med  vs tenantd\n",
    );
    for r in rows {
        let base_mode = if r.mode == "normal" { "crash" } else { r.mode };
        let base = rows
            .iter()
            .find(|b| b.variant == "tenantd" && b.mode == base_mode)
            .map(|b| b.cpu_us_median);
        let vs = match base {
            Some(b) if b > 0.0 => format!("{:+.1}%", (r.cpu_us_median / b - 1.0) * 100.0),
            _ => "-".to_owned(),
        };
        out.push_str(&format!(
            "{:<14} {:<6} {:>4}  {:>10.1}  {:>10.1}  {:>8.1}  {:>7.1}  {:>8.1}  {:>10}\n",
            r.variant,
            r.mode,
            r.runs,
            r.cpu_us_min,
            r.cpu_us_median,
            r.user_us_median,
            r.sys_us_median,
            r.wall_us_median,
            vs
        ));
    }
    out
}

/// Everything as one JSON document. Never fails.
pub fn json(b: &ColdOpen, samples: &[Sample], rows: &[Summary]) -> String {
    let doc = serde_json::json!({
        "benchmark": "cold-open",
        "dir": b.dir.display().to_string(),
        "count": b.count,
        "hold": b.hold,
        "repeat": b.repeat,
        "samples": samples,
        "summary": rows,
    });
    serde_json::to_string_pretty(&doc).expect("plain values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
