//! Charts as inline SVG, drawn on the server: no script, no library, nothing fetched.

use maud::{Markup, html};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

/// Colours for series, in order; the first three are the outcomes that matter most.
pub(super) const PALETTE: [&str; 8] = [
    "#2e7d32", "#9e9e9e", "#c62828", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037",
];

/// One line of a chart.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub label: String,
    pub colour: &'static str,
    /// One value per point; `None` where there is nothing to draw.
    pub values: Vec<Option<f64>>,
}

/// A line chart over `points` equally spaced points, with a legend, its y-axis scaled to the
/// largest value.
pub(super) fn lines(title: &str, unit: &str, lines: &[Line], first: &str, last: &str) -> Markup {
    let points = lines.iter().map(|l| l.values.len()).max().unwrap_or(0);
    let top = nice_ceiling(
        lines
            .iter()
            .flat_map(|l| l.values.iter().flatten())
            .fold(0.0_f64, |a, b| a.max(*b)),
    );
    let x = |i: usize| LEFT + (WIDTH - LEFT) * i as f64 / (points.max(2) - 1) as f64;
    let y = |v: f64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - v / top);
    html! {
        figure.chart {
            figcaption { (title) }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title) {
                line.axis x1=(LEFT) y1=(y(0.0)) x2=(WIDTH) y2=(y(0.0)) {}
                line.grid x1=(LEFT) y1=(y(top)) x2=(WIDTH) y2=(y(top)) {}
                text.tick x=(LEFT - 4.0) y=(y(top) + 4.0) text-anchor="end" { (format_value(top)) }
                text.tick x=(LEFT - 4.0) y=(y(0.0)) text-anchor="end" { "0" }
                text.tick x=(LEFT) y=(HEIGHT - 4.0) { (first) }
                text.tick x=(WIDTH) y=(HEIGHT - 4.0) text-anchor="end" { (last) }
                @for line in lines {
                    @for segment in segments(&line.values) {
                        @if segment.len() == 1 {
                            // A point alone (the first ten seconds of a series): a dot.
                            circle cx=(format!("{:.1}", x(segment[0].0))) cy=(format!("{:.1}", y(segment[0].1))) r="2.5" fill=(line.colour) {}
                        } @else {
                            polyline fill="none" stroke=(line.colour) stroke-width="1.5"
                                points=(segment.iter().map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v))).collect::<Vec<_>>().join(" ")) {}
                        }
                    }
                }
            }
            @if lines.iter().all(|l| l.values.iter().all(Option::is_none)) {
                p.empty { "Nothing yet in this window." }
            } @else {
                ul.legend {
                    @for line in lines {
                        li { (swatch(line.colour)) (line.label) " (" (unit) ")" }
                    }
                }
            }
        }
    }
}

/// Horizontal bars, one per labelled count, in the order given.
pub(super) fn bars(title: &str, counts: &[(String, u64)]) -> Markup {
    let largest = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row = 22.0;
    let label_width = 200.0;
    let height = row * counts.len() as f64 + 4.0;
    html! {
        figure.chart {
            figcaption { (title) }
            @if counts.is_empty() {
                p.empty { "None in this window." }
            } @else {
                svg viewBox={ "0 0 " (WIDTH) " " (height) } role="img" aria-label=(title) {
                    @for (i, (label, count)) in counts.iter().enumerate() {
                        @let top = row * i as f64 + 2.0;
                        @let length = (WIDTH - label_width - 60.0) * (*count as f64) / (largest as f64);
                        text.tick x=(label_width - 6.0) y=(top + 14.0) text-anchor="end" { (label) }
                        rect x=(label_width) y=(top + 3.0) width=(format!("{length:.1}")) height="14" fill=(PALETTE[2]) {}
                        text.tick x=(label_width + length + 6.0) y=(top + 14.0) { (count) }
                    }
                }
            }
        }
    }
}

/// A small coloured square (an SVG, since the console's policy allows no inline style).
pub(super) fn swatch(colour: &str) -> Markup {
    html! {
        svg.swatch viewBox="0 0 10 10" width="10" height="10" aria-hidden="true" {
            rect width="10" height="10" fill=(colour) {}
        }
    }
}

/// Runs of consecutive points that have values.
fn segments(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) => run.push((i, *v)),
            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// 1, 2 or 5 times a power of ten, at least `value` (1 for nothing).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= value)
        .unwrap_or(10.0 * power)
}

fn format_value(value: f64) -> String {
    if value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_one_two_or_five() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(17.0), 20.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(0.013), 0.02);
    }

    #[test]
    fn gaps_split_a_line() {
        let runs = segments(&[Some(1.0), None, Some(2.0), Some(3.0)]);
        assert_eq!(runs, vec![vec![(0, 1.0)], vec![(2, 2.0), (3, 3.0)]]);
    }

    #[test]
    fn labels_are_escaped() {
        let chart = bars("reasons", &[("<script>".to_owned(), 3)]).into_string();
        assert!(chart.contains("&lt;script&gt;"));
        assert!(!chart.contains("<script>"));
    }
}
