//! The page's charts, drawn with plotters' SVG backend into strings the page inlines.
//!
//! Every chart shares one x axis, wall time (`HH:MM:SS` at the run machine's offset),
//! and the same label area widths, so the charts stacked on the page line up and a
//! fault's marker sits above the commits it disturbed. Each fault kind has a colour of
//! its own and one SVG element per fault (a polygon, or a rect for a pause's span), so
//! the marks can be counted; findings are red vertical lines through every chart.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::series::{TimedStep, Timeline};
use crate::rundir::step::Action;

/// The charts' width in pixels, and the width of their y label area.
pub const WIDTH: u32 = 1100;
const Y_LABELS: u32 = 120;

pub const CRASH: RGBColor = RGBColor(0xD6, 0x27, 0x28);
pub const PAUSE: RGBColor = RGBColor(0xFF, 0x7F, 0x0E);
pub const GROW: RGBColor = RGBColor(0x1F, 0x77, 0xB4);
pub const SHRINK: RGBColor = RGBColor(0x94, 0x67, 0xBD);
pub const RESTART: RGBColor = RGBColor(0x2C, 0xA0, 0x2C);
pub const FINDING: RGBColor = RGBColor(0xE4, 0x00, 0x2B);
pub const PARTITION: RGBColor = RGBColor(0x8C, 0x56, 0x4B);
pub const NET_RESET: RGBColor = RGBColor(0x17, 0xBE, 0xCF);
pub const NET_DELAY: RGBColor = RGBColor(0xBC, 0xBD, 0x22);
pub const NET_BANDWIDTH: RGBColor = RGBColor(0x7F, 0x7F, 0x7F);
pub const NET_SLICE: RGBColor = RGBColor(0xE3, 0x77, 0xC2);
pub const CLOCK: RGBColor = RGBColor(0x00, 0x60, 0x64);
pub const POWER: RGBColor = RGBColor(0x00, 0x00, 0x00);
pub const DISK: RGBColor = RGBColor(0xB8, 0x86, 0x0B);

/// The colour of an action's mark (as the page's legend shows it).
pub fn action_color(action: Action) -> RGBColor {
    match action {
        Action::Crash => CRASH,
        Action::Pause => PAUSE,
        Action::Grow => GROW,
        Action::Shrink => SHRINK,
        Action::Restart | Action::Resume | Action::Heal | Action::ClockHeal | Action::DiskHeal => {
            RESTART
        }
        Action::Partition => PARTITION,
        Action::Reset => NET_RESET,
        Action::Delay => NET_DELAY,
        Action::Bandwidth => NET_BANDWIDTH,
        Action::Slice => NET_SLICE,
        Action::ClockStep | Action::ClockStrobe | Action::ClockRate => CLOCK,
        Action::PowerLoss => POWER,
        Action::DiskError => DISK,
    }
}

/// `#RRGGBB`.
pub fn css(color: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2)
}

/// The x range every chart shares, and how its labels read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeAxis {
    pub start: f64,
    pub end: f64,
    pub utc_offset_s: i32,
}

impl TimeAxis {
    /// The wall time `t` as `HH:MM:SS` at the axis's offset.
    pub fn label(&self, t: f64) -> String {
        let local = t + f64::from(self.utc_offset_s);
        let secs = local.rem_euclid(86_400.0) as u64;
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    }

    /// `UTC+01:00`.
    pub fn zone(&self) -> String {
        let o = self.utc_offset_s;
        let sign = if o < 0 { '-' } else { '+' };
        format!("UTC{sign}{:02}:{:02}", o.abs() / 3600, o.abs() / 60 % 60)
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.start..self.end.max(self.start + 1.0)
    }
}

type Result<T> = std::result::Result<T, String>;

fn text<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Draws `draw` on a fresh SVG of `height` pixels and returns it.
fn svg(
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(text)?;
        draw(&root)?;
        root.present().map_err(text)?;
    }
    Ok(out)
}

/// One lane per component with a mark per fault and action, and a lane of findings.
pub fn lanes(axis: &TimeAxis, timeline: &Timeline, components: &[String]) -> Result<String> {
    let lanes = components.len() + 1;
    let height = 70 + 24 * lanes as u32;
    svg(height, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .margin_right(36)
            .x_label_area_size(40)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(axis.range(), -0.5..(lanes as f64 - 0.5))
            .map_err(text)?;
        let lane_name = |y: &f64| -> String {
            let i = y.round() as usize;
            if (*y - y.round()).abs() > 0.01 {
                String::new()
            } else if i == 0 {
                "findings".into()
            } else {
                components.get(lanes - 1 - i).cloned().unwrap_or_default()
            }
        };
        chart
            .configure_mesh()
            .x_labels(10)
            .x_label_formatter(&|x| axis.label(*x))
            .x_desc(format!("wall time ({})", axis.zone()))
            .y_labels(lanes)
            .y_label_formatter(&lane_name)
            .disable_y_mesh()
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(text)?;
        let lane_of = |c: &str| {
            components
                .iter()
                .position(|x| x == c)
                .map(|i| (lanes - 1 - i) as f64)
        };
        draw_pauses(&mut chart, axis, timeline, &lane_of)?;
        let marks: Vec<(&TimedStep, f64)> = thin(
            timeline
                .steps
                .iter()
                .filter(|s| s.action != Action::Pause)
                .filter_map(|s| Some((s, lane_of(&s.component)?))),
            axis,
        );
        // One polygon per crash, grow or shrink (a triangle pointing down, up, down), per
        // network fault (a diamond), per clock fault (a square) and per power cut or disk
        // error (a bolt-like hexagon), one small circle per restart, resume or heal.
        let triangle = |down: bool| {
            let tip = if down { 6 } else { -6 };
            vec![(-6, -tip), (6, -tip), (0, tip)]
        };
        let polygons = marks
            .iter()
            .filter(|(s, _)| s.action.is_fault() && s.action != Action::Pause)
            .map(|(s, y)| {
                let shape = match s.action {
                    Action::Crash | Action::Shrink | Action::Grow => {
                        triangle(s.action != Action::Grow)
                    }
                    a if a.is_clock() => vec![(-5, -5), (5, -5), (5, 5), (-5, 5)],
                    a if a.is_disk() => vec![(-3, -7), (3, -7), (7, 0), (3, 7), (-3, 7), (-7, 0)],
                    // A network fault: a diamond.
                    _ => vec![(0, -7), (6, 0), (0, 7), (-6, 0)],
                };
                EmptyElement::at((s.time, *y))
                    + Polygon::new(shape, action_color(s.action).filled())
            });
        chart.draw_series(polygons).map_err(text)?;
        let circles = marks
            .iter()
            .filter(|(s, _)| !s.action.is_fault())
            .map(|(s, y)| {
                EmptyElement::at((s.time, *y)) + Circle::new((0, 0), 3, RESTART.filled())
            });
        chart.draw_series(circles).map_err(text)?;
        draw_findings(&mut chart, timeline, -0.5, lanes as f64 - 0.5)?;
        let finding_marks = timeline
            .findings
            .iter()
            .map(|(t, _)| EmptyElement::at((*t, 0.0)) + Circle::new((0, 0), 6, FINDING.filled()));
        chart.draw_series(finding_marks).map_err(text)?;
        Ok(())
    })
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The time axis is cut into this many slots; in each, a lane draws one mark of each
/// kind (and pauses closer than a slot are one span). At the page's width a slot is
/// about two pixels, so nothing a reader could tell apart is merged, and 100,000 events
/// still make a page of kilobytes, not megabytes.
pub const MARK_SLOTS: f64 = 500.0;

/// The first mark of each lane, kind and slot of the axis.
fn thin<'s>(
    marks: impl Iterator<Item = (&'s TimedStep, f64)>,
    axis: &TimeAxis,
) -> Vec<(&'s TimedStep, f64)> {
    let slot = ((axis.end - axis.start) / MARK_SLOTS).max(1e-9);
    let mut seen = std::collections::HashSet::new();
    marks
        .filter(|(s, y)| {
            let at = ((s.time - axis.start) / slot).floor() as i64;
            seen.insert((y.to_bits(), s.action.as_str(), at))
        })
        .collect()
}

/// Each lane's pauses, from the pause to its resume (or to the axis's end), in one
/// pass, with spans that touch or come within a slot of each other merged.
fn pause_spans(
    axis: &TimeAxis,
    timeline: &Timeline,
    lane_of: &dyn Fn(&str) -> Option<f64>,
) -> Vec<(f64, f64, f64)> {
    let slot = (axis.end - axis.start) / MARK_SLOTS;
    let mut open: std::collections::BTreeMap<&str, f64> = Default::default();
    let mut spans: Vec<(f64, f64, f64)> = Vec::new();
    let close = |y: f64, from: f64, to: f64, spans: &mut Vec<(f64, f64, f64)>| {
        let to = to.max(from + slot);
        match spans.iter_mut().rev().find(|(lane, _, _)| *lane == y) {
            Some((_, _, end)) if from <= *end + slot => *end = end.max(to),
            _ => spans.push((y, from, to)),
        }
    };
    for s in &timeline.steps {
        match s.action {
            Action::Pause => {
                open.entry(&s.component).or_insert(s.time);
            }
            Action::Resume => {
                if let (Some(from), Some(y)) =
                    (open.remove(s.component.as_str()), lane_of(&s.component))
                {
                    close(y, from, s.time, &mut spans);
                }
            }
            _ => {}
        }
    }
    for (component, from) in open {
        if let Some(y) = lane_of(component) {
            close(y, from, axis.end, &mut spans);
        }
    }
    spans
}

/// A pause is a span from the pause to its resume (or to the axis's end).
fn draw_pauses(
    chart: &mut Chart<'_, '_>,
    axis: &TimeAxis,
    timeline: &Timeline,
    lane_of: &dyn Fn(&str) -> Option<f64>,
) -> Result<()> {
    let spans = pause_spans(axis, timeline, lane_of)
        .into_iter()
        .map(|(y, from, to)| Rectangle::new([(from, y - 0.3), (to, y + 0.3)], PAUSE.filled()));
    chart.draw_series(spans).map_err(text)?;
    Ok(())
}

/// A red vertical line through the chart at each finding.
fn draw_findings(
    chart: &mut Chart<'_, '_>,
    timeline: &Timeline,
    low: f64,
    high: f64,
) -> Result<()> {
    let lines = timeline
        .findings
        .iter()
        .map(|(t, _)| PathElement::new(vec![(*t, low), (*t, high)], FINDING.stroke_width(2)));
    chart.draw_series(lines).map_err(text)?;
    Ok(())
}

/// A chart of named series (each with its own colour and a legend entry), with
/// findings marked; `scale` divides the values, `y_desc` names the axis.
pub fn series_chart(
    axis: &TimeAxis,
    timeline: &Timeline,
    series: &[(String, Vec<(f64, f64)>)],
    y_desc: &str,
) -> Result<String> {
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.08;
    svg(300, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .margin_right(36)
            .x_label_area_size(40)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(axis.range(), 0.0..top)
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_labels(10)
            .x_label_formatter(&|x| axis.label(*x))
            .x_desc(format!("wall time ({})", axis.zone()))
            .y_desc(y_desc)
            .y_label_formatter(&|y| short_number(*y))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(text)?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(text)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        draw_findings(&mut chart, timeline, 0.0, top)?;
        if series.len() > 1 || series.first().is_some_and(|s| !s.0.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(text)?;
        }
        Ok(())
    })
}

/// `1.5k`, `12M`, `0.25`: short labels for an axis (at most two decimals, trailing
/// zeros dropped).
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let (n, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{n:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_wall_clock_at_the_runs_offset() {
        let axis = TimeAxis {
            start: 0.0,
            end: 10.0,
            utc_offset_s: 3600,
        };
        assert_eq!(axis.label(1_795_920_449.9), "03:47:29");
        assert_eq!(axis.zone(), "UTC+01:00");
        let west = TimeAxis {
            utc_offset_s: -5 * 3600 - 1800,
            ..axis
        };
        assert_eq!(west.zone(), "UTC-05:30");
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(12_000_000.0), "12M");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(0.0), "0");
    }

    #[test]
    fn every_fault_is_one_element_of_its_colour() {
        let step = |time: f64, action, component: &str| TimedStep {
            time,
            action,
            component: component.into(),
            effect_ms: None,
        };
        let timeline = Timeline {
            steps: vec![
                step(1.0, Action::Crash, "sink"),
                step(2.0, Action::Restart, "sink"),
                step(3.0, Action::Crash, "worker1"),
                step(4.0, Action::Pause, "worker1"),
                step(5.0, Action::Resume, "worker1"),
                step(6.0, Action::Grow, "worker2"),
            ],
            ..Timeline::default()
        };
        let axis = TimeAxis {
            start: 0.0,
            end: 10.0,
            utc_offset_s: 0,
        };
        let names = timeline.components();
        let svg = lanes(&axis, &timeline, &names).unwrap();
        let count = |c: RGBColor| svg.matches(&format!("fill=\"{}\"", css(c))).count();
        assert_eq!(count(CRASH), 2);
        assert_eq!(count(PAUSE), 1);
        assert_eq!(count(GROW), 1);
        assert_eq!(count(RESTART), 2);
        assert!(
            svg.contains(">\nworker1\n</text>"),
            "the lane is labelled: {svg}"
        );
    }
}
