//! SVG charts (plotters, SVG backend only): tenants supported versus years of retention, one
//! line per constraint; and monthly cost per user versus users along the roadmap, one line per
//! machine profile, with the seed's own roadmap points marked.

use plotters::prelude::*;

use crate::limits::Constraint;
use crate::roadmap::StatedPhase;
use crate::series::{CostCurve, RetentionPoint};
use crate::units::{count, usd};

/// Drawing failed (plotters reported an error while writing SVG into memory).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw chart: {0}")]
pub struct ChartError(String);

fn err(e: impl std::fmt::Display) -> ChartError {
    ChartError(e.to_string())
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

fn color(constraint: Constraint) -> RGBColor {
    let i = Constraint::ALL
        .iter()
        .position(|c| *c == constraint)
        .unwrap_or(0);
    COLORS[i % COLORS.len()]
}

/// Powers of ten at or around the smallest and largest positive finite value; with `room`, a
/// value that is itself a power of ten gets a decade beyond it, so markers are not clipped.
fn log_bounds(values: impl Iterator<Item = f64>, room: bool) -> (f64, f64) {
    let slack = if room { 0.001 } else { 0.0 };
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (1.0, 10.0);
    }
    let lo = 10f64.powf((lo * (1.0 - slack)).log10().floor());
    let hi = 10f64
        .powf((hi * (1.0 + slack)).log10().ceil())
        .max(lo * 10.0);
    (lo, hi)
}

/// Both charts, stacked, as one SVG document.
pub fn charts(
    title: &str,
    retention: &[RetentionPoint],
    costs: &[CostCurve],
    stated: &[StatedPhase],
) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 1080)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (top, bottom) = root.split_vertically(540);
        retention_chart(&top, title, retention)?;
        cost_chart(&bottom, costs, stated)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn retention_chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    points: &[RetentionPoint],
) -> Result<(), ChartError> {
    let max_years = points.last().map(|p| p.years).unwrap_or(1.0);
    let (lo, hi) = log_bounds(
        points
            .iter()
            .flat_map(|p| p.limits.iter().map(|(_, v)| *v).chain([p.supported as f64])),
        true,
    );
    let hi = hi * 10.0; // room for the legend above the lines
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Tenants per machine vs years of data kept: {title}"),
            ("sans-serif", 20),
        )
        .margin(15)
        .margin_right(50)
        .x_label_area_size(45)
        .y_label_area_size(85)
        .build_cartesian_2d(0f64..max_years, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("years of data kept per tenant (retention)")
        .y_desc("tenants (log scale)")
        .y_label_formatter(&|v| count(*v))
        .draw()
        .map_err(err)?;
    for constraint in Constraint::ALL {
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| {
                let v = p.limits.iter().find(|(c, _)| *c == constraint)?.1;
                (v.is_finite() && v >= lo && v <= hi).then_some((p.years, v))
            })
            .collect();
        if line.is_empty() {
            continue;
        }
        let c = color(constraint);
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))
            .map_err(err)?
            .label(format!("{} limit", constraint.label()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    let supported: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.supported > 0)
        .map(|p| (p.years, p.supported as f64))
        .collect();
    chart
        .draw_series(LineSeries::new(supported, BLACK.stroke_width(4)))
        .map_err(err)?
        .label("tenants supported (with headroom)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(4)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn cost_chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    costs: &[CostCurve],
    stated: &[StatedPhase],
) -> Result<(), ChartError> {
    let (x_lo, x_hi) = log_bounds(
        costs
            .iter()
            .flat_map(|c| c.points.iter().map(|(u, _)| *u as f64)),
        false,
    );
    let (y_lo, y_hi) = log_bounds(
        costs
            .iter()
            .flat_map(|c| c.points.iter().map(|(_, v)| *v))
            .chain(stated.iter().map(|s| s.cost_per_user_usd)),
        true,
    );
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Monthly infrastructure cost per user along the roadmap",
            ("sans-serif", 20),
        )
        .margin(15)
        .margin_right(50)
        .x_label_area_size(45)
        .y_label_area_size(85)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("users (= tenants), log scale")
        .y_desc("USD per user per month (log scale)")
        .x_label_formatter(&|v| count(*v))
        .y_label_formatter(&|v| usd(*v))
        .draw()
        .map_err(err)?;
    for (i, curve) in costs.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().map(|(u, v)| (*u as f64, *v)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("model: {}", curve.machine))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .draw_series(stated.iter().map(|s| {
            EmptyElement::at((s.users as f64, s.cost_per_user_usd))
                + Circle::new((0, 0), 6, BLACK.filled())
                + Text::new(
                    format!("seed: {} {}/user", s.name, usd(s.cost_per_user_usd)),
                    (10, -4),
                    ("sans-serif", 13).into_font().color(&BLACK),
                )
        }))
        .map_err(err)?
        .label("the seed's roadmap (as stated)")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roadmap::SEED_ROADMAP;
    use crate::series::CostCurve;

    #[test]
    fn seed_points_are_labelled() {
        let costs = vec![CostCurve {
            machine: "m".into(),
            points: vec![(1_000, 0.01), (1_000_000, 0.001)],
        }];
        let svg = charts("t", &[], &costs, &SEED_ROADMAP).unwrap();
        assert!(svg.contains("seed: launch"), "{svg}");
    }
}
