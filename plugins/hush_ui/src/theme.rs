//! Colours and shared formatting. The status colours are the seed's
//! `connection.css`: green, grey, amber (#f59e0b), red.

use bevy_egui::egui::Color32;

pub const SUCCESS: Color32 = Color32::from_rgb(0x22, 0xc5, 0x5e);
pub const SECONDARY: Color32 = Color32::from_rgb(0x9c, 0xa3, 0xaf);
pub const AMBER: Color32 = Color32::from_rgb(0xf5, 0x9e, 0x0b);
pub const ERROR: Color32 = Color32::from_rgb(0xef, 0x44, 0x44);
pub const MUTED: Color32 = Color32::from_rgb(0x6b, 0x72, 0x80);
pub const MINE_BG: Color32 = Color32::from_rgb(0x1e, 0x3a, 0x5f);
pub const THEIRS_BG: Color32 = Color32::from_rgb(0x2a, 0x2d, 0x34);

/// `11111111…` — the short form of a UUID shown in headers.
pub fn short_id(u: &uuid::Uuid) -> String {
    let s = u.to_string();
    format!("{}…", &s[..8])
}

/// Local wall-clock time `HH:MM` of a millisecond timestamp.
pub fn clock(ms: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%H:%M").to_string()
        }
        chrono::LocalResult::None => String::new(),
    }
}

/// The local calendar day of a millisecond timestamp.
pub fn day(ms: i64) -> Option<chrono::NaiveDate> {
    use chrono::{Local, TimeZone};
    match Local.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            Some(t.date_naive())
        }
        chrono::LocalResult::None => None,
    }
}

/// `Friday 27 November 2026`
pub fn day_label(d: chrono::NaiveDate) -> String {
    d.format("%A %-d %B %Y").to_string()
}
