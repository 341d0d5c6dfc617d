//! Inline SVG charts for the report (no script, no network): vertical bars over days or
//! buckets, horizontal bars for rankings, and a sparkline for a trend.

use super::html::esc;

const W: f64 = 720.0;
const H: f64 = 220.0;
const PAD_L: f64 = 44.0;
const PAD_B: f64 = 46.0;
const PAD_T: f64 = 14.0;

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Vertical bars, one per (label, value); `series` colours, `unit` after the axis maximum.
pub fn bars(title: &str, points: &[(String, f64)], color: &str, unit: &str) -> String {
    let max = nice_max(points.iter().map(|p| p.1).fold(0.0, f64::max));
    let n = points.len().max(1) as f64;
    let plot_w = W - PAD_L - 10.0;
    let plot_h = H - PAD_B - PAD_T;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).clamp(1.0, 48.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\"><title>{}</title>",
        esc(title)
    );
    s += &format!(
        "<line x1=\"{PAD_L}\" y1=\"{PAD_T}\" x2=\"{PAD_L}\" y2=\"{y}\" stroke=\"#8a96a3\"/><line x1=\"{PAD_L}\" y1=\"{y}\" x2=\"{x}\" y2=\"{y}\" stroke=\"#8a96a3\"/>",
        y = H - PAD_B,
        x = W - 10.0
    );
    s += &format!(
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        PAD_L - 4.0,
        PAD_T + 8.0,
        fmt(max),
        esc(unit),
        PAD_L - 4.0,
        H - PAD_B
    );
    let every = (points.len() / 12).max(1);
    for (i, (label, v)) in points.iter().enumerate() {
        let h = if max > 0.0 { v / max * plot_h } else { 0.0 };
        let x = PAD_L + i as f64 * slot + (slot - bar_w) / 2.0;
        let y = H - PAD_B - h;
        s += &format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"{color}\"><title>{}: {}</title></rect>",
            esc(label),
            fmt(*v)
        );
        if *v > 0.0 && points.len() <= 24 {
            s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x + bar_w / 2.0,
                y - 2.0,
                fmt(*v)
            );
        }
        if i % every == 0 {
            s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x + bar_w / 2.0,
                H - PAD_B + 14.0,
                esc(label)
            );
        }
    }
    s + "</svg>"
}

/// Horizontal bars for a ranking (label, value), largest first as given.
pub fn ranking(title: &str, rows: &[(String, f64)], color: &str) -> String {
    let row_h = 22.0;
    let label_w = 230.0;
    let h = row_h * rows.len().max(1) as f64 + 8.0;
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\"><title>{}</title>",
        esc(title)
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let w = v / max * (W - label_w - 70.0);
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(label),
            row_h - 6.0,
            label_w + w + 4.0,
            y + 14.0,
            fmt(*v)
        );
    }
    s + "</svg>"
}

/// A small trend line of values in order (None: no data that day), 0–100 scale.
pub fn sparkline(values: &[Option<f64>]) -> String {
    let (w, h) = (160.0, 28.0);
    let n = values.len();
    let x = |i: usize| {
        if n <= 1 {
            w / 2.0
        } else {
            2.0 + i as f64 * (w - 4.0) / (n - 1) as f64
        }
    };
    let y = |v: f64| h - 2.0 - v.clamp(0.0, 100.0) / 100.0 * (h - 4.0);
    let pts: Vec<String> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect();
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><line x1=\"0\" y1=\"{y80:.1}\" x2=\"{w}\" y2=\"{y80:.1}\" stroke=\"#dde3ea\"/>",
        y80 = y(80.0)
    );
    if pts.len() > 1 {
        s += &format!(
            "<polyline fill=\"none\" stroke=\"#0b5cad\" stroke-width=\"1.5\" points=\"{}\"/>",
            pts.join(" ")
        );
    }
    for p in &pts {
        let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
        s += &format!("<circle cx=\"{px}\" cy=\"{py}\" r=\"2\" fill=\"#0b5cad\"/>");
    }
    s + "</svg>"
}

fn fmt(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn charts_are_svg_with_escaped_labels() {
        let s = super::bars("t", &[("<a>".into(), 3.0), ("b".into(), 0.0)], "#000", "");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("&lt;a&gt;") && !s.contains("<a>"));
        assert_eq!(super::nice_max(73.0), 100.0);
        assert_eq!(super::nice_max(3.0), 5.0);
        let r = super::ranking("r", &[("x".into(), 10.0)], "#000");
        assert!(r.contains("<rect"));
        assert!(super::sparkline(&[Some(90.0), None, Some(70.0)]).contains("polyline"));
    }
}
