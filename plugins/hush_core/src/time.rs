//! Server timestamps: ISO-8601 strings with microseconds.
//!
//! A stock server writes `…Z` over REST and `…+00:00` over WebSocket for the
//! same instant, so strings cannot be compared as text. [`ServerTime`] keeps the
//! server's own string (to send back verbatim as the `after` cursor) beside the
//! parsed instant (to compare).

use std::cmp::Ordering;

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

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` (or a space for `T`) to
/// microseconds since the epoch, UTC. Digits beyond microseconds are dropped.
pub fn parse_iso_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_micros = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let digits = end - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        for k in 0..6 {
            frac_micros = frac_micros * 10
                + if k < digits {
                    i64::from(b[start + k] - b'0')
                } else {
                    0
                };
        }
        i = end;
    }
    let offset_secs = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        // A naive timestamp is taken as UTC, as the server means it.
        None => 0,
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
    Some(secs * 1_000_000 + frac_micros)
}

/// The civil fields of an instant: what both formats print.
fn fields(micros: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, sod % 3600 / 60, sod % 60, frac)
}

fn format_with(micros: i64, zone: &str) -> String {
    let (y, m, d, h, mi, s, frac) = fields(micros);
    // Python's isoformat() omits a zero fraction; a stock server does the same.
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{zone}")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}{zone}")
    }
}

/// `2026-01-19T10:00:00.000000Z`: always UTC, always microseconds, the one
/// form the command line prints whatever form the server wrote.
pub fn format_utc(micros: i64) -> String {
    let (y, m, d, h, mi, s, frac) = fields(micros);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
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
