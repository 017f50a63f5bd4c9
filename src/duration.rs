//! Time in one place: durations on the command line (`250ms`, `1s`, `1.5s`, `3m`, or
//! plain seconds), seconds as a `Duration` that no number can make panic, and wall time
//! as Unix seconds, and both as a person reads them ([`human_duration`], [`local_time`]).

use std::time::Duration;

/// Seconds as a Duration (negative or NaN as zero, and at most 100 years, so no
/// number can make it panic).
pub fn secs(s: f64) -> Duration {
    let s = if s.is_finite() && s > 0.0 { s } else { 0.0 };
    Duration::from_secs_f64(s.min(MAX_SECS))
}

/// Wall time as Unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 250ms, 1s, 3m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} is not a duration (e.g. 250ms, 1s, 3m)"));
    }
    let secs = value * scale;
    if secs > MAX_SECS {
        return Err(format!("{text:?} is longer than 100 years"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The longest duration taken: far beyond any soak, and far from overflowing a clock
/// reading plus the duration.
pub const MAX_SECS: f64 = 100.0 * 365.25 * 86400.0;

/// A number of seconds a scenario gives (`at`, `for`, a timing): finite, not negative,
/// at most [`MAX_SECS`]. The error names `field` and what was expected.
pub fn check_seconds(field: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && (0.0..=MAX_SECS).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{field} = {}: expected a number of seconds from 0 to {MAX_SECS} (100 years)",
            show_number(value)
        ))
    }
}

/// A number as a person reads it: `1.5`, and `1e300` rather than 301 digits.
pub fn show_number(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_finite() && magnitude != 0.0 && !(1e-6..1e15).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// A duration as a person reads it: `850 ms`, `27.7 s`, `4 min 07 s`, `2 h 04 min 20 s`.
pub fn human_duration(seconds: f64) -> String {
    let s = if seconds.is_finite() {
        seconds.max(0.0)
    } else {
        0.0
    };
    if s < 1.0 {
        return format!("{:.0} ms", s * 1000.0);
    }
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let whole = s.round().min(MAX_SECS) as u64;
    let (h, m, sec) = (whole / 3600, whole / 60 % 60, whole % 60);
    if h == 0 {
        format!("{m} min {sec:02} s")
    } else {
        format!("{h} h {m:02} min {sec:02} s")
    }
}

/// Unix seconds as this machine's local wall-clock time, to the millisecond, with its
/// offset from UTC: `2026-12-06 19:40:13.313 +01:00`.
pub fn local_time(unix_s: f64) -> String {
    wall_time(unix_s, &chrono::Local)
}

/// Unix seconds as wall-clock time `utc_offset_s` east of UTC (a run machine's, as its
/// events.jsonl records it), in [`local_time`]'s form.
pub fn time_at_offset(unix_s: f64, utc_offset_s: i32) -> String {
    match chrono::FixedOffset::east_opt(utc_offset_s) {
        Some(zone) => wall_time(unix_s, &zone),
        None => wall_time(unix_s, &chrono::Utc),
    }
}

fn wall_time<Z: chrono::TimeZone>(unix_s: f64, zone: &Z) -> String
where
    Z::Offset: std::fmt::Display,
{
    let s = if unix_s.is_finite() { unix_s } else { 0.0 };
    match chrono::DateTime::from_timestamp_millis((s * 1000.0).round() as i64) {
        Some(t) => t
            .with_timezone(zone)
            .format("%Y-%m-%d %H:%M:%S%.3f %:z")
            .to_string(),
        None => format!("{s:.3} (Unix seconds)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_as_a_person_reads_them() {
        assert_eq!(human_duration(0.25), "250 ms");
        assert_eq!(human_duration(27.687), "27.7 s");
        assert_eq!(human_duration(247.2), "4 min 07 s");
        assert_eq!(human_duration(7460.2), "2 h 04 min 20 s");
        assert_eq!(human_duration(f64::NAN), "0 ms");
        let t = local_time(1796586013.313);
        assert!(t.starts_with("2026-12-0") && t.contains(".313 "), "{t}");
        assert!(!local_time(f64::INFINITY).is_empty());
        assert!(local_time(1e300).contains("Unix seconds"));
        assert_eq!(
            time_at_offset(1796586013.313, 3600),
            "2026-12-06 20:40:13.313 +01:00"
        );
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("3m").unwrap(), Duration::from_secs(180));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e300s").unwrap_err().contains("100 years"));
        assert!(parse_duration("99y").is_err());
    }
}
