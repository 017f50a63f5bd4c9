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

// A crash is purple, not red: red is a finding's alone.
pub const CRASH: RGBColor = RGBColor(0x7B, 0x32, 0x94);
pub const PAUSE: RGBColor = RGBColor(0xFF, 0x7F, 0x0E);
pub const GROW: RGBColor = RGBColor(0x1F, 0x77, 0xB4);
pub const SHRINK: RGBColor = RGBColor(0x9E, 0xC9, 0xE2);
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
    /// The wall time `t` at the axis's offset, as precisely as ten ticks over the axis
    /// need to differ: `HH:MM:SS`, with tenths or hundredths on an axis of seconds, and
    /// with the date on one longer than a day.
    pub fn label(&self, t: f64) -> String {
        let local = t + f64::from(self.utc_offset_s);
        let span = self.end - self.start;
        if span > 86_400.0 {
            if let Some(day) = chrono::DateTime::from_timestamp(local.floor() as i64, 0) {
                return day.format("%Y-%m-%d %H:%M").to_string();
            }
        }
        let step = nice_step(span / 10.0);
        let decimals = if step >= 1.0 {
            0
        } else {
            ((-step.log10()).ceil() as usize).min(3)
        };
        // Cut once, in units of the last digit shown, as a clock reads (29.96 s: 29.9).
        let scale = 10u64.pow(decimals as u32);
        let units = (local.rem_euclid(86_400.0) * scale as f64).floor() as u64 % (86_400 * scale);
        let (secs, fraction) = (units / scale, units % scale);
        let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        match decimals {
            0 => hms,
            d => format!("{hms}.{fraction:0d$}"),
        }
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

/// How a lanes chart draws its marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The whole run: marks thinned to one per kind and slot, and a lane with more
    /// than [`DENSITY_ABOVE`] faults drawn as a density strip.
    Whole,
    /// A window (around the first finding): every mark, unless it holds more than
    /// [`EVERY_AT_MOST`] (200,000 events in a second would make a page of megabytes):
    /// then as [`Detail::Whole`].
    Every,
}

/// The most marks a [`Detail::Every`] chart draws one by one.
pub const EVERY_AT_MOST: usize = 2000;

/// A lane with more faults than this is a density strip on the whole run's chart: past
/// it, marks overlap into a solid bar that no one can count or tell apart.
pub const DENSITY_ABOVE: usize = 150;

/// The density strip's buckets across the time axis.
pub const DENSITY_BUCKETS: usize = 160;

/// A lanes chart, and which of its lanes are density strips.
#[derive(Debug, Clone, PartialEq)]
pub struct Lanes {
    pub svg: String,
    pub density: Vec<String>,
}

/// One lane per component with a mark per fault and action (or a density strip), and
/// a lane of findings.
pub fn lanes(
    axis: &TimeAxis,
    timeline: &Timeline,
    components: &[String],
    detail: Detail,
) -> Result<Lanes> {
    let on_axis = |s: &&TimedStep| (axis.start..=axis.end).contains(&s.time);
    let detail = match detail {
        Detail::Every if timeline.steps.iter().filter(on_axis).count() > EVERY_AT_MOST => {
            Detail::Whole
        }
        d => d,
    };
    let density = match detail {
        Detail::Whole => dense_lanes(axis, timeline, components),
        Detail::Every => Vec::new(),
    };
    let lanes = components.len() + 1;
    let height = 70 + 24 * lanes as u32;
    let svg = svg(height, |root| {
        let mut chart = lanes_frame(root, axis, components)?;
        let lane_of = |c: &str| {
            components
                .iter()
                .position(|x| x == c)
                .map(|i| (lanes - 1 - i) as f64)
        };
        let marked = |c: &str| lane_of(c).filter(|_| !density.iter().any(|d| d == c));
        draw_pauses(&mut chart, axis, timeline, &marked)?;
        let in_axis = timeline
            .steps
            .iter()
            .filter(|s| s.action != Action::Pause && (axis.start..=axis.end).contains(&s.time))
            .filter_map(|s| Some((s, marked(&s.component)?)));
        let marks: Vec<(&TimedStep, f64)> = match detail {
            Detail::Whole => thin(in_axis, axis),
            Detail::Every => in_axis.collect(),
        };
        draw_marks(&mut chart, &marks)?;
        for c in &density {
            if let Some(y) = lane_of(c) {
                draw_density(&mut chart, axis, timeline, c, y)?;
            }
        }
        draw_findings(
            &mut chart,
            axis,
            timeline,
            (-0.5, lanes as f64 - 0.5),
            Some(0.0),
        )?;
        Ok(())
    })?;
    Ok(Lanes { svg, density })
}

/// The components with more than [`DENSITY_ABOVE`] faults on the axis.
fn dense_lanes(axis: &TimeAxis, timeline: &Timeline, components: &[String]) -> Vec<String> {
    let mut faults: std::collections::HashMap<&str, usize> = Default::default();
    for s in &timeline.steps {
        if s.action.is_fault() && (axis.start..=axis.end).contains(&s.time) {
            *faults.entry(s.component.as_str()).or_default() += 1;
        }
    }
    components
        .iter()
        .filter(|c| faults.get(c.as_str()).copied().unwrap_or(0) > DENSITY_ABOVE)
        .cloned()
        .collect()
}

/// The axes and lane names of a lanes chart.
fn lanes_frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    axis: &TimeAxis,
    components: &[String],
) -> Result<Chart<'a, 'b>> {
    let lanes = components.len() + 1;
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
    Ok(chart)
}

/// One polygon per crash, grow or shrink (a triangle pointing down, up, down), per
/// network fault (a diamond), per clock fault (a square) and per power cut or disk
/// error (a hexagon), one small circle per restart, resume or heal.
fn draw_marks(chart: &mut Chart<'_, '_>, marks: &[(&TimedStep, f64)]) -> Result<()> {
    let triangle = |down: bool| {
        let tip = if down { 6 } else { -6 };
        vec![(-6, -tip), (6, -tip), (0, tip)]
    };
    let polygons = marks
        .iter()
        .filter(|(s, _)| s.action.is_fault() && s.action != Action::Pause)
        .map(|(s, y)| {
            let shape = match s.action {
                Action::Crash | Action::Shrink | Action::Grow => triangle(s.action != Action::Grow),
                a if a.is_clock() => vec![(-5, -5), (5, -5), (5, 5), (-5, 5)],
                a if a.is_disk() => vec![(-3, -7), (3, -7), (7, 0), (3, 7), (-3, 7), (-7, 0)],
                // A network fault: a diamond.
                _ => vec![(0, -7), (6, 0), (0, 7), (-6, 0)],
            };
            EmptyElement::at((s.time, *y)) + Polygon::new(shape, action_color(s.action).filled())
        });
    chart.draw_series(polygons).map_err(text)?;
    let circles = marks
        .iter()
        .filter(|(s, _)| !s.action.is_fault())
        .map(|(s, y)| EmptyElement::at((s.time, *y)) + Circle::new((0, 0), 3, RESTART.filled()));
    chart.draw_series(circles).map_err(text)?;
    Ok(())
}

/// `component`'s faults as a strip of [`DENSITY_BUCKETS`] bars: each as tall as the
/// faults in its bucket (the fullest bucket fills the lane), stacked by kind in each
/// kind's colour.
fn draw_density(
    chart: &mut Chart<'_, '_>,
    axis: &TimeAxis,
    timeline: &Timeline,
    component: &str,
    y: f64,
) -> Result<()> {
    let width = (axis.end - axis.start).max(1e-9) / DENSITY_BUCKETS as f64;
    let mut buckets: Vec<std::collections::BTreeMap<&str, (RGBColor, usize)>> =
        vec![Default::default(); DENSITY_BUCKETS];
    for s in timeline.steps.iter().filter(|s| s.component == component) {
        if s.action.is_fault() && (axis.start..=axis.end).contains(&s.time) {
            let i = (((s.time - axis.start) / width) as usize).min(DENSITY_BUCKETS - 1);
            let color = action_color(s.action);
            buckets[i].entry(s.action.as_str()).or_insert((color, 0)).1 += 1;
        }
    }
    let fullest = buckets
        .iter()
        .map(|b| b.values().map(|v| v.1).sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut bars = Vec::new();
    for (i, kinds) in buckets.iter().enumerate() {
        let (x0, x1) = (
            axis.start + i as f64 * width,
            axis.start + (i + 1) as f64 * width,
        );
        let mut bottom = y - 0.4;
        for (color, n) in kinds.values() {
            let top = bottom + 0.8 * *n as f64 / fullest as f64;
            bars.push(Rectangle::new([(x0, bottom), (x1, top)], color.filled()));
            bottom = top;
        }
    }
    chart.draw_series(bars).map_err(text)?;
    Ok(())
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
    // Clipped to the axis: a window's chart has pauses that began before it.
    let spans = pause_spans(axis, timeline, lane_of)
        .into_iter()
        .map(|(y, from, to)| (y, from.max(axis.start), to.min(axis.end)))
        .filter(|(_, from, to)| from < to)
        .map(|(y, from, to)| Rectangle::new([(from, y - 0.3), (to, y + 0.3)], PAUSE.filled()));
    chart.draw_series(spans).map_err(text)?;
    Ok(())
}

/// A red vertical line through the chart at each finding on the axis, and a red dot
/// in the findings lane (`dot_at`) when the chart has one.
fn draw_findings(
    chart: &mut Chart<'_, '_>,
    axis: &TimeAxis,
    timeline: &Timeline,
    (low, high): (f64, f64),
    dot_at: Option<f64>,
) -> Result<()> {
    let on_axis = || {
        (timeline.findings.iter())
            .map(|(t, _)| *t)
            .filter(|t| (axis.start..=axis.end).contains(t))
    };
    if let Some(y) = dot_at {
        let dots =
            on_axis().map(|t| EmptyElement::at((t, y)) + Circle::new((0, 0), 6, FINDING.filled()));
        chart.draw_series(dots).map_err(text)?;
    }
    let lines =
        on_axis().map(|t| PathElement::new(vec![(t, low), (t, high)], FINDING.stroke_width(2)));
    chart.draw_series(lines).map_err(text)?;
    Ok(())
}

/// What a series chart's values are: counts get integer ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    Counts,
    Amounts,
}

/// The lines' colours: none is a red (findings) or the crash mark's purple.
pub const SERIES: [RGBColor; 8] = [
    RGBColor(0x08, 0x51, 0x9C),
    RGBColor(0x2C, 0xA0, 0x2C),
    RGBColor(0xFF, 0x7F, 0x0E),
    RGBColor(0x17, 0xBE, 0xCF),
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0xBC, 0xBD, 0x22),
    RGBColor(0x7F, 0x7F, 0x7F),
    RGBColor(0xE3, 0x77, 0xC2),
];

/// A chart of named series (each with its own colour and a legend entry), with
/// findings marked; `y_desc` names the axis. The series named `emphasis` (the failing
/// key) is drawn bold over the others, muted.
pub fn series_chart(
    axis: &TimeAxis,
    timeline: &Timeline,
    series: &[(String, Vec<(f64, f64)>)],
    (y_desc, values): (&str, Values),
    emphasis: Option<&str>,
) -> Result<String> {
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.08;
    let labels = match values {
        Values::Counts => (top.floor() as usize).clamp(1, 8),
        Values::Amounts => 8,
    };
    let step = nice_step(top / labels as f64);
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
            .y_labels(labels)
            .y_label_formatter(&|y| tick_label(*y, step))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(text)?;
        draw_lines(&mut chart, series, emphasis)?;
        draw_findings(&mut chart, axis, timeline, (0.0, top), None)?;
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

/// Each series a line in its colour, the emphasized one bold and last (over the others,
/// which are muted).
fn draw_lines(
    chart: &mut Chart<'_, '_>,
    series: &[(String, Vec<(f64, f64)>)],
    emphasis: Option<&str>,
) -> Result<()> {
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by_key(|&i| Some(series[i].0.as_str()) == emphasis);
    for i in order {
        let (name, points) = &series[i];
        let color = SERIES[i % SERIES.len()].to_rgba();
        let style = match emphasis {
            Some(e) if e == name => color.stroke_width(4),
            Some(_) => color.mix(0.35).stroke_width(1),
            None => color.stroke_width(2),
        };
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(text)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    Ok(())
}

/// The tick step plotters takes for `rough` (1, 2 or 5 times a power of ten, at least
/// `rough`), so labels can be given just enough decimals.
fn nice_step(rough: f64) -> f64 {
    let rough = rough.max(1e-12);
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough * 0.999)
        .unwrap_or(10.0 * power)
}

/// A y tick: as many decimals as ticks `step` apart need to differ, `k` and `M` for
/// thousands and millions.
pub fn tick_label(v: f64, step: f64) -> String {
    if step >= 1000.0 {
        return short_number(v);
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().max(0.0) as usize
    };
    format!("{v:.decimals$}")
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
        // Ticks a fraction of a second apart differ; a longer axis than a day has dates.
        let short = TimeAxis { end: 3.0, ..axis };
        assert_eq!(short.label(1_795_920_449.25), "03:47:29.2");
        assert_eq!(short.label(1_795_920_449.96), "03:47:29.9");
        let long = TimeAxis {
            end: 3.0 * 86_400.0,
            ..axis
        };
        assert_eq!(long.label(1_795_920_449.9), "2026-11-29 03:47");
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
        let svg = lanes(&axis, &timeline, &names, Detail::Whole).unwrap().svg;
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

    /// Past [`DENSITY_ABOVE`] faults a lane is a density strip (a few bars, not a mark
    /// per fault), a quiet lane keeps its marks, and a window draws every mark in it.
    #[test]
    fn a_busy_lane_is_a_density_strip_and_a_window_draws_every_mark() {
        let step = |time: f64, action, component: &str| TimedStep {
            time,
            action,
            component: component.into(),
            effect_ms: None,
        };
        let mut steps: Vec<TimedStep> = (0..1000)
            .map(|i| step(i as f64, Action::Crash, "sink"))
            .collect();
        steps.push(step(500.0, Action::Crash, "worker1"));
        let timeline = Timeline {
            steps,
            ..Timeline::default()
        };
        let axis = TimeAxis {
            start: 0.0,
            end: 1000.0,
            utc_offset_s: 0,
        };
        let names = timeline.components();
        let whole = lanes(&axis, &timeline, &names, Detail::Whole).unwrap();
        assert_eq!(whole.density, vec!["sink".to_string()]);
        let crash = format!("fill=\"{}\"", css(CRASH));
        // One bar per bucket for the sink, and worker1's one mark.
        assert_eq!(whole.svg.matches(&crash).count(), DENSITY_BUCKETS + 1);
        let window = TimeAxis {
            start: 480.0,
            end: 540.0,
            ..axis
        };
        let every = lanes(&window, &timeline, &names, Detail::Every).unwrap();
        assert!(every.density.is_empty());
        // 480..=540 s: 61 sink crashes and worker1's, every one a mark.
        assert_eq!(every.svg.matches(&crash).count(), 62);
        // But not 200,000 marks of one busy second: past EVERY_AT_MOST, as the whole.
        let burst = Timeline {
            steps: (0..20_000)
                .map(|i| step(500.0 + i as f64 / 20_000.0, Action::Crash, "sink"))
                .collect(),
            ..Timeline::default()
        };
        let capped = lanes(&window, &burst, &names, Detail::Every).unwrap();
        assert_eq!(capped.density, vec!["sink".to_string()]);
        assert!(capped.svg.len() < 200_000, "{} bytes", capped.svg.len());
    }

    /// Ticks as far apart as plotters draws them never share a label.
    #[test]
    fn tick_labels_never_repeat() {
        for top in [0.3, 2.16, 7.0, 13.5, 35.2, 250.0, 4321.0, 2.5e6] {
            let step = nice_step(top / 8.0);
            let labels: Vec<String> = (0..=8).map(|i| tick_label(i as f64 * step, step)).collect();
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(labels, unique, "top {top}");
        }
        // And as plotters places them on a drawn chart, for counts and for amounts.
        let axis = TimeAxis {
            start: 0.0,
            end: 100.0,
            utc_offset_s: 0,
        };
        for (top, values) in [
            (2.0, Values::Counts),
            (2.0, Values::Amounts),
            (0.013, Values::Amounts),
            (37.0, Values::Counts),
        ] {
            let points = vec![(0.0, 0.0), (100.0, top)];
            let svg = series_chart(
                &axis,
                &Timeline::default(),
                &[(String::new(), points)],
                ("y", values),
                None,
            )
            .unwrap();
            let ticks: Vec<&str> = svg
                .split("</text>")
                .filter_map(|t| t.rsplit('>').next())
                .map(str::trim)
                .filter(|t| !t.is_empty() && !t.contains(':') && t.parse::<f64>().is_ok())
                .collect();
            let mut unique = ticks.clone();
            unique.sort();
            unique.dedup();
            assert!(
                ticks.len() >= 2 && unique.len() == ticks.len(),
                "{top} {values:?}: {ticks:?}"
            );
            if values == Values::Counts {
                assert!(ticks.iter().all(|t| !t.contains('.')), "{ticks:?}");
            }
        }
        assert_eq!(tick_label(5.0, 5.0), "5");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.05, 0.05), "0.05");
    }
}
