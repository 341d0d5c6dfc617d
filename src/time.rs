//! Times. In output, seconds are rounded to milliseconds, so JSON says `0.7`, not
//! `0.7000000000000001` (analysis keeps full precision; only what is written out is rounded).
//! Wall-clock dates are UTC ISO 8601 text (`2026-12-01T15:37:51Z`), as SQLite's `strftime`
//! writes them, computed here from Unix time (civil-from-days; no date crate needed).

use serde::Serializer;

/// Round seconds to the millisecond.
pub fn ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

/// `#[serde(serialize_with = "crate::time::round_ms")]` for an `f64` field of seconds.
pub fn round_ms<S: Serializer>(t: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*t))
}

/// The same for an `Option<f64>`.
pub fn round_ms_opt<S: Serializer>(t: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&ms(*t)),
        None => s.serialize_none(),
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) → days since 1970-01-01 (the inverse of [`civil_date`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, tod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// Now, as Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    iso_utc(now_ms())
}

/// A file's modification time as `YYYY-MM-DDTHH:MM:SSZ` (a recorder writes a recording when
/// its call ends: the best call date a file without a sidecar date has).
pub fn modified_utc(path: &std::path::Path) -> Option<String> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let ms = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    Some(iso_utc(ms as i64))
}

/// A date a user typed (`YYYY-MM-DD`, optionally with `THH:MM[:SS][Z]` or a space before the
/// time) as the ISO form the store compares; None if it is not one.
pub fn parse_date(text: &str) -> Option<String> {
    let t = text.trim();
    let (date, time) = match t.find(['T', ' ']) {
        Some(i) => (&t[..i], t[i + 1..].trim_end_matches('Z')),
        None => (t, ""),
    };
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    // Round-trip through days: 2026-02-30 is refused, not turned into March.
    if civil_date(days_from_civil(y, m, d)) != (y, m, d) {
        return None;
    }
    let mut hms = [0u32; 3];
    if !time.is_empty() {
        let fields: Vec<&str> = time.split(':').collect();
        if fields.len() < 2 || fields.len() > 3 {
            return None;
        }
        for (slot, f) in hms.iter_mut().zip(&fields) {
            *slot = f.parse().ok()?;
        }
        if hms[0] > 23 || hms[1] > 59 || hms[2] > 59 {
            return None;
        }
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        hms[0], hms[1], hms[2]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(20_788), (2026, 12, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        for days in [-1000, 0, 59, 60, 11_016, 20_788, 50_000] {
            let (y, m, d) = civil_date(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(iso_utc(1_796_139_471_000), "2026-12-01T15:37:51Z");
    }

    #[test]
    fn typed_dates_are_checked() {
        assert_eq!(parse_date("2026-12-01").unwrap(), "2026-12-01T00:00:00Z");
        assert_eq!(
            parse_date("2026-12-01 08:30").unwrap(),
            "2026-12-01T08:30:00Z"
        );
        assert_eq!(
            parse_date("2026-12-01T08:30:05Z").unwrap(),
            "2026-12-01T08:30:05Z"
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "yesterday",
            "2026-12",
            "2026-12-01T25:00",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sums_of_frame_times_print_as_milliseconds() {
        #[derive(serde::Serialize)]
        struct T {
            #[serde(serialize_with = "super::round_ms")]
            t: f64,
        }
        let t = 0.1 * 7.0;
        assert_ne!(t.to_string(), "0.7");
        assert_eq!(serde_json::to_string(&T { t }).unwrap(), r#"{"t":0.7}"#);
    }
}
