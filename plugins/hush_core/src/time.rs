//! Server timestamps: ISO-8601 strings with microseconds.
//!
//! A stock server writes `…Z` over REST and `…+00:00` over WebSocket for the
//! same instant, so strings cannot be compared as text. [`ServerTime`] keeps the
//! server's own string (to send back verbatim as the `after` cursor) beside the
//! parsed instant (to compare).

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDateTime, Utc};

/// An instant as the server wrote it.
#[derive(Debug, Clone, Eq)]
pub struct ServerTime {
    /// Microseconds since the Unix epoch, UTC.
    pub micros: i64,
    /// The server's string, verbatim.
    pub raw: String,
}

impl ServerTime {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(ServerTime {
            micros: parse_iso_micros(raw)?,
            raw: raw.to_owned(),
        })
    }
}

impl PartialEq for ServerTime {
    fn eq(&self, other: &Self) -> bool {
        self.micros == other.micros
    }
}

impl PartialOrd for ServerTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ServerTime {
    fn cmp(&self, other: &Self) -> Ordering {
        self.micros.cmp(&other.micros)
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` (or a space for `T`) to
/// microseconds since the epoch, UTC; a timestamp without a zone is taken
/// as UTC, as the server means it. Digits beyond microseconds are dropped.
/// The calendar is chrono's.
pub fn parse_iso_micros(s: &str) -> Option<i64> {
    // chrono's own parsers are more lenient than this format in places
    // (a `+0000` offset, a fraction with no digits): check its shape first.
    if !shape_ok(s) {
        return None;
    }
    // Every received message's time is parsed, twice: read the fields
    // straight from the checked shape, and leave to chrono's parser only
    // what that does not settle (a leap second, an odd offset, a bad date).
    from_fields(s).or_else(|| parse_with_chrono(s))
}

/// The instant of a string of the checked shape, when its fields are a
/// plain date, a second below 60 and an offset below 24 hours.
fn from_fields(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let (sec, mut i) = (num(17..19), 19);
    let mut micros = 0;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let kept = n.min(6);
        micros = num(i + 1..i + 1 + kept) * 10u32.pow(6 - kept as u32);
        i += 1 + n;
    }
    let offset_secs = match b.get(i) {
        Some(sign @ (b'+' | b'-')) => {
            let (h, m) = (num(i + 1..i + 3), num(i + 4..i + 6));
            if h >= 24 || m >= 60 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => 0,
    };
    if sec >= 60 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10))?;
    let time = chrono::NaiveTime::from_hms_micro_opt(num(11..13), num(14..16), sec, micros)?;
    Some(date.and_time(time).and_utc().timestamp_micros() - offset_secs * 1_000_000)
}

/// chrono's reading of a string of the checked shape.
fn parse_with_chrono(s: &str) -> Option<i64> {
    let t = s.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&t) {
        return Some(dt.timestamp_micros());
    }
    NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().timestamp_micros())
}

/// The exact shape `parse_iso_micros` takes: ASCII digits where digits go,
/// one to nine fraction digits, and `Z`, `±HH:MM` or nothing at the end.
fn shape_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|p| p.iter().all(u8::is_ascii_digit));
    if b.len() < 19
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !(b[10] == b'T' || b[10] == b' ')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return false;
        }
        i += 1 + n;
    }
    match b.get(i) {
        None => true,
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len() && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

fn utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn format_with(micros: i64, zone: &str) -> String {
    let t = utc(micros);
    // Python's isoformat() omits a zero fraction; a stock server does the same.
    if micros.rem_euclid(1_000_000) == 0 {
        format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S"))
    } else {
        format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.6f"))
    }
}

/// `2026-01-19T10:00:00.000000Z`: always UTC, always microseconds, the one
/// form the command line prints whatever form the server wrote.
pub fn format_utc(micros: i64) -> String {
    format!("{}Z", utc(micros).format("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// `2026-01-19T10:00:00.123456Z`, as a stock server writes over REST.
pub fn format_rest(micros: i64) -> String {
    format_with(micros, "Z")
}

/// `2026-01-19T10:00:00.123456+00:00`, as a stock server writes over WebSocket.
pub fn format_ws(micros: i64) -> String {
    format_with(micros, "+00:00")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_printed_form_whatever_the_server_wrote() {
        for raw in [
            "2026-01-19T10:00:00Z",
            "2026-01-19T10:00:00+00:00",
            "2026-01-19T10:00:00.000000Z",
        ] {
            let m = parse_iso_micros(raw).unwrap();
            assert_eq!(format_utc(m), "2026-01-19T10:00:00.000000Z", "{raw}");
        }
        let m = parse_iso_micros("2026-01-19T10:00:00.1234+00:00").unwrap();
        assert_eq!(format_utc(m), "2026-01-19T10:00:00.123400Z");
    }

    #[test]
    fn both_server_formats_parse_to_the_same_instant() {
        let rest = parse_iso_micros("2026-01-19T10:00:00.123456Z").unwrap();
        let ws = parse_iso_micros("2026-01-19T10:00:00.123456+00:00").unwrap();
        assert_eq!(rest, ws);
        assert_eq!(rest, 1_768_816_800_123_456);
        assert_eq!(format_rest(rest), "2026-01-19T10:00:00.123456Z");
        assert_eq!(format_ws(rest), "2026-01-19T10:00:00.123456+00:00");
    }

    #[test]
    fn fractions_offsets_and_zero_micros() {
        assert_eq!(parse_iso_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso_micros("1970-01-01T00:00:00.5Z"), Some(500_000));
        assert_eq!(
            parse_iso_micros("1970-01-01T00:00:00.123456789Z"),
            Some(123_456)
        );
        assert_eq!(parse_iso_micros("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_iso_micros("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(parse_iso_micros("1970-01-01 00:00:01"), Some(1_000_000));
        assert_eq!(format_rest(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ws(1), "1970-01-01T00:00:00.000001+00:00");
        assert_eq!(format_rest(-1), "1969-12-31T23:59:59.999999Z");
    }

    /// The direct reading agrees with chrono's wherever it answers.
    #[test]
    fn fields_read_directly_agree_with_chrono() {
        let mut answered = 0;
        for raw in [
            "2026-01-19T10:00:00.123456Z",
            "2026-01-19T10:00:00.123456+00:00",
            "2026-01-19 10:00:00.1",
            "2026-01-19T10:00:00.123456789-05:30",
            "2026-01-19T10:00:00.000001+23:59",
            "2026-01-19T10:00:00-23:59",
            "2026-01-19T10:00:00+24:00",
            "2026-01-19T10:00:00+12:60",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "1969-12-31T23:59:59.999999Z",
            "2024-02-29T23:59:59Z",
            "2026-02-29T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-19T24:00:00Z",
            "2026-01-19T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5+00:00",
        ] {
            assert!(shape_ok(raw), "{raw}");
            if let Some(m) = from_fields(raw) {
                answered += 1;
                assert_eq!(Some(m), parse_with_chrono(raw), "{raw}");
            }
            assert_eq!(parse_iso_micros(raw), parse_with_chrono(raw), "{raw}");
        }
        assert!(answered >= 10, "{answered}");
    }

    #[test]
    fn rubbish_does_not_parse() {
        for bad in [
            "",
            "2026-01-19",
            "2026-13-01T00:00:00Z",
            "2026-01-19T10:00:00.Z",
            "2026-01-19T10:00:00Zjunk",
            "2026-01-19T10:00:00+0000",
            "2026-01-19T25:00:00Z",
            "２０２６-01-19T10:00:00Z",
        ] {
            assert_eq!(parse_iso_micros(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_calendar_is_checked_and_a_leap_second_is_the_next_one() {
        assert_eq!(parse_iso_micros("2026-02-31T00:00:00Z"), None);
        assert_eq!(parse_iso_micros("2025-02-29T00:00:00Z"), None);
        assert!(parse_iso_micros("2024-02-29T00:00:00Z").is_some());
        assert_eq!(
            parse_iso_micros("2016-12-31T23:59:60Z"),
            parse_iso_micros("2017-01-01T00:00:00Z")
        );
    }

    #[test]
    fn round_trip_many_instants() {
        let mut t = -10_000_000_000_000_000i64;
        while t < 10_000_000_000_000_000 {
            assert_eq!(parse_iso_micros(&format_rest(t)), Some(t));
            assert_eq!(parse_iso_micros(&format_ws(t)), Some(t));
            t += 123_456_789_012_345;
        }
    }

    #[test]
    fn server_time_orders_by_instant_and_keeps_the_string() {
        let a = ServerTime::parse("2026-01-19T10:00:00.000002Z").unwrap();
        let b = ServerTime::parse("2026-01-19T10:00:00.000001+00:00").unwrap();
        assert!(b < a);
        assert_eq!(b.raw, "2026-01-19T10:00:00.000001+00:00");
    }
}
