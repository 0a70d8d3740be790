//! Charts as inline SVG, drawn on the server: no script, no library, nothing fetched.

use maud::{Markup, html};

use super::format;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 30.0;

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

/// What a chart's x axis covers: the window's name and the times of its first and last points.
#[derive(Debug, Clone)]
pub(super) struct Axis {
    /// `last 5 min`, `last hour`, `last 24 h`.
    pub window: &'static str,
    /// The spacing of the points (`10 s points`).
    pub step: &'static str,
    pub first: String,
    pub last: String,
}

/// A figure shown beside a chart: what it is and its value, already written.
#[derive(Debug, Clone)]
pub(super) struct Figure {
    pub label: String,
    pub value: String,
    /// `bad` or `warn` to colour it.
    pub class: Option<&'static str>,
}

impl Figure {
    pub(super) fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
            class: None,
        }
    }

    pub(super) fn marked(mut self, class: &'static str, when: bool) -> Self {
        if when {
            self.class = Some(class);
        }
        self
    }
}

/// The figures beside a chart, so that a value the picture shows as a dot still reads whole.
pub(super) fn figures(figures: &[Figure]) -> Markup {
    html! {
        dl.figures {
            @for figure in figures {
                div {
                    dt { (figure.label) }
                    dd class=[figure.class] { (figure.value) }
                }
            }
        }
    }
}

/// A line chart over equally spaced points, with a legend and the figures beside it; its y
/// axis is scaled to the largest value, which is marked and labelled (`peak 97 773`).
pub(super) fn lines(
    title: &str,
    unit: &str,
    lines: &[Line],
    axis: &Axis,
    beside: &[Figure],
) -> Markup {
    let points = lines.iter().map(|l| l.values.len()).max().unwrap_or(0);
    let peak = lines
        .iter()
        .flat_map(|l| {
            l.values
                .iter()
                .enumerate()
                .filter_map(move |(i, v)| v.map(|v| (i, v, l)))
        })
        .fold(None::<(usize, f64, &Line)>, |best, point| match best {
            Some(best) if best.1 >= point.1 => Some(best),
            _ => Some(point),
        });
    let top = nice_ceiling(peak.map_or(0.0, |p| p.1));
    let x = |i: usize| LEFT + (WIDTH - LEFT - 4.0) * i as f64 / (points.max(2) - 1) as f64;
    let y = |v: f64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - v / top);
    let empty = lines.iter().all(|l| l.values.iter().all(Option::is_none));
    html! {
        figure.chart {
            figcaption { (title) }
            (figures(beside))
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title) {
                text.window x=(WIDTH - 4.0) y="13" text-anchor="end" { (axis.window) " · " (axis.step) }
                line.axis x1=(LEFT) y1=(y(0.0)) x2=(WIDTH) y2=(y(0.0)) {}
                line.grid x1=(LEFT) y1=(y(top)) x2=(WIDTH) y2=(y(top)) {}
                line.grid x1=(LEFT) y1=(y(top / 2.0)) x2=(WIDTH) y2=(y(top / 2.0)) {}
                text.tick x=(LEFT - 4.0) y=(y(top) + 4.0) text-anchor="end" { (format::decimal(top)) }
                text.tick x=(LEFT - 4.0) y=(y(top / 2.0) + 4.0) text-anchor="end" { (format::decimal(top / 2.0)) }
                text.tick x=(LEFT - 4.0) y=(y(0.0)) text-anchor="end" { "0" }
                text.tick x=(LEFT) y=(HEIGHT - 4.0) { (axis.first) }
                text.tick x=(WIDTH - 4.0) y=(HEIGHT - 4.0) text-anchor="end" { (axis.last) }
                @for line in lines {
                    @for segment in segments(&line.values) {
                        @if segment.len() == 1 {
                            // A point alone (one sample, or the first bucket of a series): a dot.
                            circle cx=(format!("{:.1}", x(segment[0].0))) cy=(format!("{:.1}", y(segment[0].1))) r="3" fill=(line.colour) {}
                        } @else {
                            polyline fill="none" stroke=(line.colour) stroke-width="1.5"
                                points=(segment.iter().map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v))).collect::<Vec<_>>().join(" ")) {}
                        }
                    }
                }
                @if let Some((i, value, line)) = peak.filter(|p| p.1 > 0.0) {
                    @let (px, py) = (x(i), y(value));
                    // The label sits on the side of the peak with room for it.
                    @let anchor = if px > WIDTH / 2.0 { "end" } else { "start" };
                    @let dx = if px > WIDTH / 2.0 { -6.0 } else { 6.0 };
                    circle.peak cx=(format!("{px:.1}")) cy=(format!("{py:.1}")) r="4" fill="none" stroke=(line.colour) {}
                    // Below the point, or above it when it is near the axis.
                    @let ly = if py + 18.0 < y(0.0) - 4.0 { py + 18.0 } else { py - 8.0 };
                    text.peak x=(format!("{:.1}", px + dx)) y=(format!("{ly:.1}")) text-anchor=(anchor) {
                        "peak " (line.label) " " (format::decimal(value))
                    }
                }
            }
            @if empty {
                p.empty { "Nothing in this window." }
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

/// Horizontal bars, one per labelled count, in the order given, each with its count.
pub(super) fn bars(counts: &[(String, u64)]) -> Markup {
    let largest = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row = 24.0;
    let label_width = 220.0;
    let height = row * counts.len() as f64 + 4.0;
    html! {
        @if counts.is_empty() {
            p.empty { "None in this window." }
        } @else {
            svg viewBox={ "0 0 " (WIDTH) " " (height) } role="img" aria-label="Counts by reason" {
                @for (i, (label, count)) in counts.iter().enumerate() {
                    @let top = row * i as f64 + 2.0;
                    @let length = (WIDTH - label_width - 80.0) * (*count as f64) / (largest as f64);
                    text.tick x=(label_width - 6.0) y=(top + 15.0) text-anchor="end" { (label) }
                    rect x=(label_width) y=(top + 4.0) width=(format!("{length:.1}")) height="14" fill=(PALETTE[2]) {}
                    text.tick x=(label_width + length + 6.0) y=(top + 15.0) { (format::count(*count)) }
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
    fn a_lone_large_value_is_labelled_and_scales_the_axis() {
        let axis = Axis {
            window: "last hour",
            step: "10 s points",
            first: "08:00".to_owned(),
            last: "09:00".to_owned(),
        };
        let mut values = vec![None; 360];
        values[359] = Some(97_773.0);
        let line = Line {
            label: "housekeeping".to_owned(),
            colour: PALETTE[3],
            values,
        };
        let chart = lines("Delivery lag", "events", &[line], &axis, &[]).into_string();
        assert!(chart.contains("peak housekeeping 97\u{a0}773"), "{chart}");
        assert!(
            chart.contains(">100\u{a0}000<"),
            "the axis reaches past it: {chart}"
        );
        assert!(chart.contains("last hour · 10 s points"), "{chart}");
    }

    #[test]
    fn labels_are_escaped() {
        let chart = bars(&[("<script>".to_owned(), 3)]).into_string();
        assert!(chart.contains("&lt;script&gt;"));
        assert!(!chart.contains("<script>"));
    }
}
