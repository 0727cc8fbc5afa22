//! A small SVG scatter chart with a fitted line (peak RSS over concurrency), written by hand so
//! the report needs no drawing library for it. Pure: points in, SVG text out.

use std::fmt::Write;

/// A chart's labels and data.
pub struct Scatter<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// The measured points.
    pub points: &'a [(f64, f64)],
    /// A fitted line `y = intercept + slope × x`, drawn across the x range.
    pub line: Option<(f64, f64)>,
}

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart as an SVG document.
pub fn scatter(c: &Scatter<'_>) -> String {
    let max_x = c.points.iter().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let max_y = c
        .points
        .iter()
        .map(|p| p.1)
        .chain(c.line.map(|(i, s)| i + s * max_x))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let px = |x: f64| LEFT + x / max_x * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y.max(0.0) / max_y * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        W / 2.0,
        escape(c.title)
    );
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"black\"/>",
        b = H - BOTTOM,
        r = W - RIGHT
    );
    for i in 0..=4 {
        let (x, y) = (max_x * i as f64 / 4.0, max_y * i as f64 / 4.0);
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            px(x),
            H - BOTTOM + 16.0,
            short(x),
            LEFT - 6.0,
            py(y) + 4.0,
            short(y)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">{}</text>",
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0,
        escape(c.x_label),
        H / 2.0,
        H / 2.0,
        escape(c.y_label)
    );
    if let Some((intercept, slope)) = c.line {
        let _ = writeln!(
            s,
            "<line class=\"fit\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c33\" stroke-dasharray=\"6 4\"/>",
            px(0.0),
            py(intercept),
            px(max_x),
            py(intercept + slope * max_x)
        );
    }
    for &(x, y) in c.points {
        let _ = writeln!(
            s,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#236\"/>",
            px(x),
            py(y)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn short(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_and_the_line_are_drawn_inside_the_plot() {
        let points = [(64.0, 2e6), (256.0, 9e6), (1024.0, 40e6)];
        let svg = scatter(&Scatter {
            title: "peak RSS <over> concurrency",
            x_label: "in flight",
            y_label: "bytes",
            points: &points,
            line: Some((0.0, 39_000.0)),
        });
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("class=\"point\"").count(), 3);
        assert_eq!(svg.matches("class=\"fit\"").count(), 1);
        assert!(svg.contains("&lt;over&gt;"), "titles are escaped");
        for cap in svg.split("cx=\"").skip(1) {
            let x: f64 = cap.split('"').next().unwrap().parse().unwrap();
            assert!((LEFT..=W - RIGHT).contains(&x), "{x}");
        }
    }
}
