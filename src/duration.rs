//! The one duration grammar of seqmig (issue 19 review, issue 18.7): `seqmig.toml`
//! (`min_soak`, `window`) and every flag (`--retry-budget`) read durations here, so a value
//! accepted in one place is accepted in all.
//!
//! A duration is a bare number of seconds (`90`, `1.5`) or one or more `NUMBER UNIT` parts,
//! spaces allowed: `500ms`, `30s`, `10m`, `1.5h`, `1h30m`, `2 minutes`, `1 day 12 hours`.
//! Numbers may have a decimal part.

use std::time::Duration;

/// What an error message lists as accepted.
pub const ACCEPTED: &str = "a number of seconds or NUMBER UNIT parts such as 500ms, 30s, 10m, 1.5h, 1h30m, \
     2 minutes or 2d (units: ms, s, m, h, d, w and their names: seconds, minutes, hours, days, weeks)";

/// The length of one `unit`, in seconds.
fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "week" | "weeks" => 7.0 * 86400.0,
        _ => return None,
    })
}

/// Reads a duration; the error says what was wrong and what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = |why: String| format!("'{text}' is not a duration: {why}; expected {ACCEPTED}");
    if t.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if let Ok(secs) = t.parse::<f64>()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return seconds(secs).ok_or_else(|| bad("it is too large".into()));
    }
    let mut total = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad(format!("a number is expected at '{rest}'")));
        }
        let n: f64 =
            rest[..digits].parse().map_err(|_| bad(format!("'{}' is not a number", &rest[..digits])))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(bad(format!("the number {n} has no unit")));
        }
        let len = unit_seconds(unit).ok_or_else(|| bad(format!("unknown unit '{unit}'")))?;
        total += n * len;
        rest = rest[unit_len..].trim_start();
        // `1 hour, 30 minutes` and `1 hour and 30 minutes` read as written.
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        rest = rest.strip_prefix("and ").unwrap_or(rest).trim_start();
    }
    seconds(total).ok_or_else(|| bad("it is too large".into()))
}

fn seconds(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok().map(|d| {
        // Round to the millisecond: 0.1 + 0.2 must not become 299.999… ms.
        Duration::from_millis((d.as_secs_f64() * 1000.0).round() as u64)
    })
}

/// `1h30m`, `2s`, `500ms`, `1.5s`: what [`parse_duration`] reads back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
        return if ms < 1000 { format!("{ms}ms") } else { format!("{:.1}s", d.as_secs_f64()) };
    }
    let mut s = d.as_secs();
    let mut out = String::new();
    for (unit, len) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_the_same_everywhere() {
        let h = |x: f64| Duration::from_secs_f64(x * 3600.0);
        for (text, want) in [
            ("24h", h(24.0)),
            ("1h30m", h(1.5)),
            ("1.5h", h(1.5)),
            ("1 hour 30 minutes", h(1.5)),
            ("1 hour, 30 minutes", h(1.5)),
            ("90m", h(1.5)),
            ("5400", h(1.5)),
            ("2 minutes", Duration::from_secs(120)),
            ("2 Minutes", Duration::from_secs(120)),
            ("500ms", Duration::from_millis(500)),
            ("0.5s", Duration::from_millis(500)),
            ("2d", h(48.0)),
            ("1w", h(168.0)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "soon", "3x", "10 parsecs", "h", "1h 30", "-1h", "1..5h"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("expected a number of seconds"), "{bad}: {e}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for d in [5400, 86400, 90, 0].map(Duration::from_secs).into_iter().chain([Duration::from_millis(250)])
        {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
