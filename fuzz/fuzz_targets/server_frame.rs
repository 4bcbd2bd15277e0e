//! Any bytes as a frame, from a server (client side) and from a client
//! (relay side): an error or a frame, never a panic; what parses re-serialises
//! and parses to the same frame.
#![no_main]

use hush_core::wire::{ClientFrame, ServerFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(f) = ServerFrame::parse(&text) {
        if !matches!(f, ServerFrame::Unknown { .. }) {
            assert_eq!(ServerFrame::parse(&f.to_json()).ok(), Some(f));
        }
    }
    if let Ok(f) = ClientFrame::parse(&text) {
        let again = ClientFrame::parse(&f.to_json()).expect("a parsed frame re-parses");
        assert_eq!(again, f);
    }
});
