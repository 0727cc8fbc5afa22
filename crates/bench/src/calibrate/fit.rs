//! Least-squares line through measured points: the slope is the per-unit cost (e.g. RSS per
//! in-flight operation), the intercept the fixed cost. Pure.

/// A fitted line `y = intercept + slope × x`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Line {
    /// Change of y per unit of x.
    pub slope: f64,
    /// y at x = 0.
    pub intercept: f64,
    /// Coefficient of determination (1 = every point on the line; NaN when y is constant).
    pub r2: f64,
}

/// The least-squares line through `points`; `None` with fewer than two distinct x values.
pub fn line(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let ss_res: f64 = points
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    Some(Line {
        slope,
        intercept,
        r2: 1.0 - ss_res / ss_tot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_is_recovered() {
        let l = line(&[(64.0, 100.0), (256.0, 148.0), (1024.0, 340.0)]).unwrap();
        assert!((l.slope - 0.25).abs() < 1e-12, "{l:?}");
        assert!((l.intercept - 84.0).abs() < 1e-9, "{l:?}");
        assert!((l.r2 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn noisy_points_give_the_trend_and_a_lower_r2() {
        let l = line(&[(0.0, 1.0), (1.0, 2.5), (2.0, 2.5), (3.0, 4.0)]).unwrap();
        assert!((l.slope - 0.9).abs() < 1e-12, "{l:?}");
        assert!(l.r2 < 1.0 && l.r2 > 0.8, "{l:?}");
    }

    #[test]
    fn one_point_or_one_x_has_no_line() {
        assert!(line(&[(1.0, 1.0)]).is_none());
        assert!(line(&[(2.0, 1.0), (2.0, 3.0)]).is_none());
    }
}
