//! The HTML page of a [`PostMortem`], from a maud template: every interpolated text is
//! escaped by maud, so a log line holding `<script>` is shown, never run. The only
//! unescaped parts are the stylesheet below and the SVG plotters drew (which escapes its
//! own text). No script, no external reference: the page reads the same offline.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::chart::{self, TimeAxis};
use super::series::MAX_POINTS;
use super::violation::{diff_span, ContextRow, ViolationView};
use super::{PageVerdict, PostMortem};
use crate::driver::command::shell_quote;
use crate::formats::text::{shown, visible};

/// Whether the page reloads itself (when served live).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    Static,
    EverySeconds(u32),
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
main{max-width:1140px;margin:0 auto;padding:0 16px 40px}
header.banner{padding:18px 24px;color:#fff}
header.ok{background:#1e7b34} header.violation{background:#b3261e} header.error{background:#6b4e00} header.undetermined{background:#6b4e00}
header h1{margin:0 0 6px;font-size:28px;letter-spacing:.5px}
header p{margin:4px 0}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
header code{background:rgba(255,255,255,.15);padding:1px 5px;border-radius:3px;color:#fff}
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:18px 0;padding:12px 18px}
h2{font-size:19px;margin:6px 0 10px}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
td.num{text-align:right}
.legend span{display:inline-block;margin-right:16px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px;border-radius:2px}
tr.differs td.text{background:#fff4f4}
mark{background:#ffb3b3;color:#000;padding:0}
tr.at td{border-top:2px solid #b3261e}
.log{max-height:420px;overflow:auto;background:#fbfbfb;border:1px solid #eee;padding:6px;margin:0;white-space:pre-wrap;word-break:break-all}
.log .alarm{background:#ffe0e0;color:#8b0000;font-weight:600}
.note{color:#555}
svg{display:block;max-width:100%;height:auto}
figure{margin:0}
header .note{color:#fff;opacity:.85}
code .arg{white-space:nowrap}
.scroll{overflow-x:auto}
"#;

/// The page.
pub fn render(pm: &PostMortem, refresh: Refresh) -> String {
    let axis = time_axis(pm);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Refresh::EverySeconds(s) = refresh {
                    meta http-equiv="refresh" content=(s);
                }
                title { "soakcheck report: " (pm.verdict.as_str()) " — " (pm.files.label) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (banner(pm))
                main {
                    (summary(pm))
                    @match axis {
                        Some(Ok(axis)) => (timeline(pm, &axis)),
                        Some(Err(span)) => p.note { "No charts: the stamps and events span " @if span.is_finite() { (crate::duration::show_number(span)) " s, " } "more than 100 years (a clock set far off, or a stamp rewritten), which no time axis can show; the tables below list everything." },
                        None => {},
                    }
                    @if !pm.violations.is_empty() {
                        section #violation {
                            h2 { "The violation" }
                            @for v in &pm.violations { (violation(v, pm.utc_offset_s)) }
                        }
                    }
                    (problems(pm))
                    (faults(pm, axis.as_ref().and_then(|a| a.as_ref().ok())))
                    (logs(pm, axis.as_ref().and_then(|a| a.as_ref().ok())))
                    p.note { "Made by soakcheck " (env!("CARGO_PKG_VERSION")) " from " (pm.files.label) "." }
                }
            }
        }
    };
    page.into_string()
}

/// The x range: from the run's start (or first commit) to its end (or last point); the
/// span instead when it is past 100 years (no axis can be drawn over it).
fn time_axis(pm: &PostMortem) -> Option<Result<TimeAxis, f64>> {
    let t = &pm.timeline;
    let mut times: Vec<f64> = t.steps.iter().map(|s| s.time).collect();
    times.extend(t.findings.iter().map(|f| f.0));
    times.extend(t.header.as_ref().map(|h| h.start));
    times.extend(t.end.as_ref().map(|e| e.time));
    if let Some(c) = &pm.commits {
        times.push(c.buckets.start);
        times.push(c.buckets.start + c.buckets.width * c.buckets.count as f64);
    }
    times.extend(pm.acks.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)));
    let start = times.iter().copied().reduce(f64::min)?;
    let end = times.iter().copied().reduce(f64::max)?;
    let span = end - start;
    if !span.is_finite() || span > crate::duration::MAX_SECS {
        return Some(Err(span));
    }
    Some(Ok(TimeAxis {
        start,
        end,
        utc_offset_s: pm.utc_offset_s,
    }))
}

fn banner(pm: &PostMortem) -> Markup {
    let v = pm.verdict;
    html! {
        header.banner.(v.as_str()) #verdict {
            h1 { (match v { PageVerdict::Ok => "OK", PageVerdict::Violation => "VIOLATION", PageVerdict::Error => "ERROR", PageVerdict::Undetermined => "UNDETERMINED" }) }
            @if let Some(e) = &pm.error { p { "Could not check: " code { (e) } } }
            @for view in &pm.violations {
                p.finding { "Key " strong { (view.key) } ": " strong { (view.kind.as_str()) } ", "
                    (view.lines) " line(s) at input line " (view.input_line) " of " code { (view.input_path.display()) } }
            }
            @for (_, f) in &pm.timeline.findings {
                p.finding { "The run found " strong { (f.kind_name()) }
                    @if let Some(k) = &f.key { " (key " strong { (k) } ")" }
                    " after " (crate::duration::human_duration(f.elapsed_s)) ": " (shown(&f.detail)) }
            }
            @if let Some(r) = &pm.report {
                @for k in r.keys.iter().filter(|k| k.order_undetermined.is_some()) {
                    @if let Some([a, b]) = &k.order_undetermined {
                        p.finding { "Key " strong { (k.key) } " has no verdict: its lines in " code { (shown(&a.file)) } " (txnlog line " (a.txnlog_line) ") and in " code { (shown(&b.file)) } " (txnlog line " (b.txnlog_line) ") may have been committed in either order, because the sink's timestamps go back between them." }
                    }
                }
                @for p in r.problems.iter().filter(|p| p.severity == crate::verify::Severity::Violation) {
                    p.finding { "Sink problem " strong { (crate::json_name(&p.kind)) } ": " (shown(&p.file)) ":" (p.line) ": " (shown(&p.detail)) }
                }
            }
            @if v == PageVerdict::Ok {
                p { "Every committed line of every key is its input, in order: nothing lost, duplicated or reordered." }
            }
            (repeat(pm))
        }
    }
}

/// The seed and the commands that repeat the run.
fn repeat(pm: &PostMortem) -> Markup {
    let Some(h) = &pm.timeline.header else {
        return html! {};
    };
    let mut args: Vec<String> = Vec::new();
    let mut skip = false;
    for a in h.command.iter() {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == "--seed" || a == "--replay" {
            skip = true;
            continue;
        }
        if a.starts_with("--seed=") || a.starts_with("--replay=") {
            continue;
        }
        args.push(shell_quote(a));
    }
    // Relative paths in the command are from where it was given.
    let mut base: Vec<String> = match &h.cwd {
        Some(d) => vec!["cd".into(), shell_quote(d), "&&".into()],
        None => Vec::new(),
    };
    base.extend(args);
    let run_dir = std::path::Path::new(h.cwd.as_deref().unwrap_or("")).join(&h.run_dir);
    let events = crate::rundir::RunDir(&run_dir)
        .events()
        .display()
        .to_string();
    let kept = crate::rundir::kept::kept_dir(&run_dir, h).join(crate::rundir::EVENTS);
    html! {
        @if let Some(from) = &h.replayed {
            p { "Seed " code { (h.seed) } ". This run replayed the faults of " code { (shown(from)) } "." }
        } @else {
            p { "Seed " code { (h.seed) } ". Repeat: " (command(&base, &["--seed".into(), h.seed.to_string()])) }
        }
        p { "Replay its faults exactly: " (command(&base, &["--replay".into(), shell_quote(&events)])) }
        p.note { "After another run in " (shown(&run_dir.display().to_string())) ", this run is kept in its own folder: replay it with " (command(&["--replay".into(), shell_quote(&kept.display().to_string())], &[])) "." }
    }
}

/// A shell command whose lines break only between its words, never inside a flag.
fn command(words: &[String], more: &[String]) -> Markup {
    html! {
        code.command {
            @for (i, w) in words.iter().chain(more).enumerate() {
                @if i > 0 { " " }
                span.arg { (shown(w)) }
            }
        }
    }
}

/// The most notes listed: a file of 200,000 bad lines is named by its first few.
pub const NOTES_SHOWN: usize = 20;

fn summary(pm: &PostMortem) -> Markup {
    let report = pm.report.as_ref();
    let commits = report.map_or(0, |r| r.sink.commits);
    let bytes = report.map_or(0, |r| r.sink.committed_bytes);
    let span = pm
        .commits
        .as_ref()
        .map(|c| c.buckets.width * c.buckets.count as f64);
    html! {
        section #summary {
            h2 { "Run" }
            table {
                tr { th { "source" } td.mono { (pm.files.label) } }
                tr { th { "sink directory" } td.mono { (pm.files.sink_dir.display()) } }
                tr { th { "commits" } td.num { span #commits { (commits) } } }
                tr { th { "committed bytes" } td.num { (bytes) } }
                @if let (Some(span), true) = (span, bytes > 0) {
                    tr { th { "throughput" } td.num { (format!("{:.3} MB/s over {:.0} s of commits", bytes as f64 / 1e6 / span, span)) } }
                }
                @if let Some(r) = report {
                    tr { th { "keys" } td {
                        @for k in &r.keys {
                            span.mono { (k.key) " " (if k.violation.is_some() { "FAILED" } else if k.order_undetermined.is_some() { "undetermined" } else if k.complete { "complete" } else { "ok so far" })
                                " (" (k.verified_bytes) "/" (k.input_bytes) " bytes)" } br;
                        }
                    } }
                }
                tr { th { "faults" } td.num { (pm.timeline.steps.iter().filter(|s| s.action.is_fault()).count()) } }
                @if let Some(end) = &pm.timeline.end {
                    tr { th { "the run ended" } td { (end.verdict) " after " (crate::duration::human_duration(end.duration_s)) } }
                }
            }
            @for n in pm.notes.iter().take(NOTES_SHOWN) { p.note { "Note: " (shown(n)) } }
            @if pm.notes.len() > NOTES_SHOWN {
                p.note { "Note: " (pm.notes.len() - NOTES_SHOWN) " more notes are left out (the first " (NOTES_SHOWN) " are above)." }
            }
        }
    }
}

/// Seconds either side of the first finding that the detail chart covers.
pub const DETAIL_WINDOW_S: f64 = 30.0;

/// One chart of the timeline: its title, what it is (`data-chart`), and its SVG.
struct Figure {
    title: String,
    kind: &'static str,
    mode: &'static str,
    svg: Result<String, String>,
}

fn timeline(pm: &PostMortem, axis: &TimeAxis) -> Markup {
    let mut figures = lane_figures(pm, axis);
    figures.extend(series_figures(pm, axis));
    html! {
        section #timeline {
            h2 { "Timeline" }
            (legend(pm))
            @for f in &figures {
                figure data-chart=(f.kind) data-mode=(f.mode) {
                    h3 { (f.title) }
                    @match &f.svg {
                        Ok(svg) => { (PreEscaped(svg)) }
                        Err(e) => { p.note { "This chart could not be drawn: " (e) } }
                    }
                }
            }
            p.note { "Series are downsampled to at most " (MAX_POINTS) " points per line. A lane draws one mark of each kind per 1/" (chart::MARK_SLOTS) " of the time axis (about two pixels), and pauses that close are one span; a lane with more than " (chart::DENSITY_ABOVE) " faults is a density strip instead: per 1/" (chart::DENSITY_BUCKETS) " of the axis, a bar as tall as its faults (the fullest fills the lane), stacked by kind. The tables below count every event." }
        }
    }
}

/// The commits, and each key's committed bytes and acked offsets, with the failing
/// key's line bold.
fn series_figures(pm: &PostMortem, axis: &TimeAxis) -> Vec<Figure> {
    let mut figures = Vec::new();
    let failing = pm
        .report
        .as_ref()
        .and_then(|r| (r.keys.iter().find(|k| k.violation.is_some())).map(|k| k.key.clone()));
    let failing = failing.as_deref();
    if let Some(c) = &pm.commits {
        let counts: Vec<(f64, f64)> = (c.commits.iter().enumerate())
            .map(|(i, &n)| (c.buckets.time(i), n as f64))
            .collect();
        let per = match c.buckets.width {
            w if w <= 1.0 => "second".to_string(),
            w => crate::duration::human_duration(w),
        };
        let svg = chart::series_chart(
            axis,
            &pm.timeline,
            &[(String::new(), counts)],
            ("commits", chart::Values::Counts),
            None,
        );
        figures.push(Figure {
            title: format!("Commits per {per}"),
            kind: "commits",
            mode: "line",
            svg,
        });
    }
    for (title, kind, series, unit) in [
        (
            "Committed MB per key",
            "key-bytes",
            &pm.key_bytes,
            "MB committed",
        ),
        (
            "Acked offset per sender (MB of its input)",
            "acks",
            &pm.acks,
            "MB acked",
        ),
    ] {
        if !series.is_empty() {
            let svg = chart::series_chart(
                axis,
                &pm.timeline,
                &to_mb(series),
                (unit, chart::Values::Amounts),
                failing,
            );
            figures.push(Figure {
                title: title.into(),
                kind,
                mode: "line",
                svg,
            });
        }
    }
    figures
}

/// The whole run's lanes, and every mark within [`DETAIL_WINDOW_S`] of the first
/// finding.
fn lane_figures(pm: &PostMortem, axis: &TimeAxis) -> Vec<Figure> {
    let t = &pm.timeline;
    if t.header.is_none() && t.steps.is_empty() && t.findings.is_empty() {
        return Vec::new();
    }
    let components = t.components();
    let figure = |title: String, kind, lanes: Result<chart::Lanes, String>| {
        let mode = match &lanes {
            Ok(l) if !l.density.is_empty() => "density",
            _ => "marks",
        };
        Figure {
            title,
            kind,
            mode,
            svg: lanes.map(|l| l.svg),
        }
    };
    let whole = chart::lanes(axis, t, &components, chart::Detail::Whole);
    let mut figures = vec![figure(
        "Faults and findings per component".into(),
        "lanes",
        whole,
    )];
    if let Some(at) = t.findings.first().map(|f| f.0) {
        let window = TimeAxis {
            start: at - DETAIL_WINDOW_S,
            end: at + DETAIL_WINDOW_S,
            ..*axis
        };
        let title = format!(
            "Every fault within {DETAIL_WINDOW_S:.0} s of the first finding ({})",
            axis.label(at)
        );
        let every = chart::lanes(&window, t, &components, chart::Detail::Every);
        figures.push(figure(title, "detail", every));
    }
    figures
}

/// The legend: only the kinds of mark the run has.
fn legend(pm: &PostMortem) -> Markup {
    use crate::rundir::step::Action as A;
    let steps = &pm.timeline.steps;
    let has = |kinds: &[A]| steps.iter().any(|s| kinds.contains(&s.action));
    let entries: Vec<(&str, &str, plotters::style::RGBColor)> = [
        ("crash", "crash", &[A::Crash][..], chart::CRASH),
        ("pause", "pause (span to resume)", &[A::Pause], chart::PAUSE),
        ("grow", "grow", &[A::Grow], chart::GROW),
        ("shrink", "shrink", &[A::Shrink], chart::SHRINK),
        (
            "recovery",
            "restart / resume / heal",
            &[A::Restart, A::Resume, A::Heal, A::ClockHeal, A::DiskHeal],
            chart::RESTART,
        ),
        ("partition", "partition", &[A::Partition], chart::PARTITION),
        ("reset", "reset", &[A::Reset], chart::NET_RESET),
        ("delay", "delay", &[A::Delay], chart::NET_DELAY),
        (
            "bandwidth",
            "bandwidth",
            &[A::Bandwidth],
            chart::NET_BANDWIDTH,
        ),
        ("slice", "slice", &[A::Slice], chart::NET_SLICE),
        (
            "clock",
            "clock step, strobe or rate",
            &[A::ClockStep, A::ClockStrobe, A::ClockRate],
            chart::CLOCK,
        ),
        ("power-loss", "power loss", &[A::PowerLoss], chart::POWER),
        ("disk-error", "disk error", &[A::DiskError], chart::DISK),
    ]
    .into_iter()
    .filter(|(_, _, kinds, _)| has(kinds))
    .map(|(kind, name, _, color)| (kind, name, color))
    .chain((!pm.timeline.findings.is_empty()).then_some(("finding", "finding", chart::FINDING)))
    .collect();
    html! {
        p.legend {
            @for (kind, name, color) in &entries {
                span data-kind=(kind) { span.swatch style=(format!("background:{}", chart::css(*color))) {} (name) }
            }
        }
    }
}

fn to_mb(series: &[(String, Vec<(f64, u64)>)]) -> Vec<(String, Vec<(f64, f64)>)> {
    series
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                p.iter().map(|&(t, b)| (t, b as f64 / 1e6)).collect(),
            )
        })
        .collect()
}

fn violation(v: &ViolationView, utc_offset_s: i32) -> Markup {
    html! {
        h3 { "Key " (v.key) ": " (v.kind.as_str()) ", " (v.lines) " line(s)" }
        table.provenance {
            tr { th { "input" } td.mono { (v.input_path.display()) " line " (v.input_line) ", offset " (v.input_offset) } }
            tr { th { "key output offset" } td.num { (v.key_offset) } }
            @if let Some(c) = &v.commit {
                tr { th { "commit" } td.mono { (shown(&c.txn_id)) " at " (crate::duration::time_at_offset(c.time, utc_offset_s)) " (" (format!("{:.3}", c.time)) " in the txnlog)" } }
                tr { th { "txnlog" } td.mono { (c.file) ".txnlog:" (c.txnlog_line) } }
                tr { th { "output" } td.mono { (c.file) " byte " (c.file_offset) } }
            } @else {
                tr { th { "commit" } td { "none: the committed output ended before this line" } }
            }
            @if let Some(j) = &v.joined {
                tr { th { "continued by" } td.mono { (j.txn_id) " (" (j.file) " byte " (j.file_offset) ")" } }
            }
        }
        table.context {
            tr { th { "" } th { "input line" } th { "input" } th { "committed output of key " (v.key) } }
            @for row in &v.rows { (context_row(row)) }
        }
        @if v.hex {
            @if let Some(row) = v.rows.iter().find(|r| r.offset == 0) {
                h4 { "Byte view of the line" }
                (hex_view("expected (input)", row.input.as_deref(), row.output.as_deref()))
                (hex_view("found (output)", row.output.as_deref(), row.input.as_deref()))
            }
        }
    }
}

fn context_row(row: &ContextRow) -> Markup {
    let class = match (row.offset, row.differs()) {
        (0, _) => "at differs",
        (_, true) => "differs",
        _ => "",
    };
    html! {
        tr class=(class) {
            td.num { (if row.offset == 0 { "→".to_string() } else { format!("{:+}", row.offset) }) }
            td.num { @if let Some(n) = row.input_line { (n) } }
            td.text.mono { (highlighted(row.input.as_deref(), row.output.as_deref())) }
            td.text.mono { (highlighted(row.output.as_deref(), row.input.as_deref())) }
        }
    }
}

/// `line` with the bytes where it differs from `other` marked.
fn highlighted(line: Option<&[u8]>, other: Option<&[u8]>) -> Markup {
    let Some(line) = line else {
        return html! { span.note { "(none)" } };
    };
    let Some(other) = other.filter(|o| *o != line) else {
        return html! { (visible(line)) };
    };
    let (prefix, suffix) = diff_span(line, other);
    let middle_end = line.len() - suffix;
    html! {
        (visible(&line[..prefix])) mark { (visible(&line[prefix..middle_end])) } (visible(&line[middle_end..]))
    }
}

/// 16 bytes a row, offset, hex and text; bytes that differ from `other` marked.
fn hex_view(title: &str, line: Option<&[u8]>, other: Option<&[u8]>) -> Markup {
    let line = line.unwrap_or(b"");
    let other = other.unwrap_or(b"");
    let differs = |i: usize| other.get(i) != line.get(i);
    html! {
        p { strong { (title) } " — " (line.len()) " bytes" }
        pre.hex.mono {
            @for (r, row) in line.chunks(16).enumerate() {
                (format!("{:06x}  ", r * 16))
                @for (i, b) in row.iter().enumerate() {
                    @if differs(r * 16 + i) { mark { (format!("{b:02x}")) } " " } @else { (format!("{b:02x} ")) }
                }
                (" ".repeat(3 * (16 - row.len()) + 1))
                (row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect::<String>())
                "\n"
            }
        }
    }
}

fn problems(pm: &PostMortem) -> Markup {
    let Some(r) = &pm.report else {
        return html! {};
    };
    if r.problems.is_empty() {
        return html! {};
    }
    html! {
        section #problems {
            h2 { "Sink problems and notes" }
            table {
                tr { th { "severity" } th { "where" } th { "kind" } th { "detail" } }
                @for p in &r.problems {
                    tr { td { (crate::json_name(&p.severity)) } td.mono { (shown(&p.file)) ":" (p.line) } td { (crate::json_name(&p.kind)) } td { (shown(&p.detail)) } }
                }
            }
        }
    }
}

/// The most recoveries listed one by one (the slowest); every fault is in the counts
/// and on the timeline.
pub const RECOVERIES_LISTED: usize = 25;

fn faults(pm: &PostMortem, axis: Option<&TimeAxis>) -> Markup {
    if pm.fault_counts.is_empty() {
        return html! {};
    }
    let mut by_component: std::collections::BTreeMap<&str, Vec<&super::Recovery>> =
        Default::default();
    for r in &pm.recoveries {
        by_component.entry(&r.component).or_default().push(r);
    }
    let kinds: Vec<&String> = pm.fault_counts.keys().collect();
    let count = |kind: &String, c: &str| pm.fault_counts[kind].get(c).copied().unwrap_or(0);
    let label = |t: f64| axis.map_or_else(|| format!("{t:.3}"), |a| a.label(t));
    let mut slowest: Vec<&super::Recovery> = pm.recoveries.iter().collect();
    slowest.sort_by(|a, b| {
        b.after_s
            .unwrap_or(f64::INFINITY)
            .total_cmp(&a.after_s.unwrap_or(f64::INFINITY))
    });
    slowest.truncate(RECOVERIES_LISTED);
    html! {
        section #faults {
            h2 { "Faults and recovery" }
            p.note { "Recovery: from the fault to the next commit involving its component (one in a worker's own output file, one with a line of a sender's key, any for the sink)." }
            div.scroll { table {
                tr { th { "component" } @for k in &kinds { th { (k) } } th { "median recovery" } th { "90th percentile" } th { "longest" } th { "no commit since" } }
                @for (c, rs) in &by_component {
                    @let times: Vec<f64> = rs.iter().filter_map(|r| r.after_s).collect();
                    tr { td { (c) } @for k in &kinds { td.num { (count(k, c)) } }
                        @if times.is_empty() { td {} td {} td {} } @else {
                            td.num { (format!("{:.2} s", percentile(&times, 0.5))) }
                            td.num { (format!("{:.2} s", percentile(&times, 0.9))) }
                            td.num { (format!("{:.2} s", percentile(&times, 1.0))) }
                        }
                        td.num { (rs.len() - times.len()) } }
                }
            } }
            details open[pm.recoveries.len() <= RECOVERIES_LISTED] {
                summary { "The " (slowest.len()) " slowest recoveries of " (pm.recoveries.len()) " faults" }
                table {
                    tr { th { "time" } th { "component" } th { "fault" } th { "recovered after" } }
                    @for r in &slowest {
                        tr.fault { td.mono { (label(r.time)) } td { (r.component) } td { (r.action.as_str()) }
                            td.num { @match r.after_s { Some(s) => (format!("{s:.2} s")), None => "no commit since" } } }
                    }
                }
            }
        }
    }
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn logs(pm: &PostMortem, axis: Option<&TimeAxis>) -> Markup {
    let label = |t: Option<f64>| match (t, axis) {
        (Some(t), Some(a)) => a.label(t),
        _ => String::new(),
    };
    // A green run with faults logs the errors its faults cause (a peer crashed, a link
    // was cut): they are expected, so they are collapsed, not shown first in red.
    let expected = pm.verdict == PageVerdict::Ok
        && pm.first_finding.is_none()
        && pm.timeline.steps.iter().any(|s| s.action.is_fault());
    let alarm = |alarm: bool| if alarm && !expected { "alarm" } else { "" };
    html! {
        section #logs {
            @match pm.first_finding {
                Some(t) => h2 { "Logs within " (super::LOG_WINDOW_S) " s of the first finding (" (label(Some(t))) ")" },
                None if expected => h2 { "Errors logged after the injected faults" },
                None => h2 { "ERROR, FATAL and CRITICAL log lines" },
            }
            @if pm.logs.is_empty() { p.note { "No log line to show." } }
            @else if expected {
                p.note.expected { "The run passed. These lines follow the faults it injected (a connection reset after a crash, a peer cut off by the network): the system logs them while it recovers, and none of them is a finding. They are collapsed; open a log to read them." }
            }
            @for l in &pm.logs {
                details open[!expected && (l.excerpt.lines.iter().any(|x| x.alarm) || pm.first_finding.is_some())] {
                    summary { span.mono { (shown(&l.file)) } " (" (shown(&l.component)) ", " (l.excerpt.lines.len()) " lines"
                        @if l.excerpt.omitted > 0 { ", " (l.excerpt.omitted) " more not shown" } ")" }
                    pre.log {
                        @for line in &l.excerpt.lines {
                            span class=(alarm(line.alarm)) { (format!("{:>6}  ", line.number)) (shown(&line.text)) } "\n"
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(shell_quote("--run-dir"), "--run-dir");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_hostile_line_is_escaped() {
        let html = highlighted(Some(b"<script>alert(1)</script>"), None).into_string();
        assert_eq!(html, "&lt;script&gt;alert(1)&lt;/script&gt;");
        let marked = highlighted(Some(b"A1 <b>"), Some(b"A1 x")).into_string();
        assert_eq!(marked, "A1 <mark>&lt;b&gt;</mark>");
    }
}
