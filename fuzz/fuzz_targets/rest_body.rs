//! Any bytes as a REST answer: the bodies the client reads, and the error
//! classification for every status. Errors, never panics.
#![no_main]

use hush_core::http::{ApiFailure, AuthResponse, Health, MessageRow, ThreadRow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data.split_first() {
        Some((s, rest)) => (200 + u16::from(*s) * 2, String::from_utf8_lossy(rest)),
        None => (200, "".into()),
    };
    let _ = serde_json::from_str::<AuthResponse>(&body);
    let _ = serde_json::from_str::<Health>(&body).map(|h| h.has("message_sent"));
    let _ = serde_json::from_str::<Vec<ThreadRow>>(&body);
    if let Ok(rows) = serde_json::from_str::<Vec<MessageRow>>(&body) {
        let mut c = hush_core::policy::CatchupCursor::default();
        let _ = hush_core::policy::catchup::on_page(&mut c, rows.iter().map(|r| r.created_at.as_str()), 200);
    }
    for is_auth in [false, true] {
        let f = ApiFailure::classify(status, &body, is_auth, None);
        let _ = f.to_string();
    }
    let _ = hush_core::time::parse_iso_micros(&body);
});
