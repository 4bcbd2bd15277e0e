//! Glyphs for every script in the browser without a bigger bundle. The
//! bundle embeds one Latin font; a CJK font and a symbols-and-emoji font are
//! files beside it (web/build.sh copies them from the build machine's fonts
//! and names them in `globalThis.hushFonts`), fetched from the relay only
//! when a text on screen has a character the loaded fonts lack.
//!
//! What is looked at: the messages of a thread whose log changed (its newest
//! ones), drafts as they are typed, and contact names.

/// The fallback fonts there are, in the order egui tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fallback {
    /// Chinese, Japanese, Korean.
    Cjk,
    /// Symbols, dingbats, arrows, emoji (monochrome).
    Symbols,
}

impl Fallback {
    /// Its key in `globalThis.hushFonts`.
    pub fn key(self) -> &'static str {
        match self {
            Fallback::Cjk => "cjk",
            Fallback::Symbols => "symbols",
        }
    }
}

/// The font that would show `c`, for a character the loaded fonts lack.
pub fn fallback_for(c: char) -> Fallback {
    let u = c as u32;
    let cjk = matches!(u,
        0x1100..=0x11FF        // Hangul Jamo
        | 0x2E80..=0x2FDF      // CJK radicals, Kangxi
        | 0x3000..=0x31FF      // CJK punctuation, kana, bopomofo, Hangul compatibility
        | 0x3200..=0x4DBF      // enclosed CJK, compatibility, extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xA960..=0xA97F
        | 0xAC00..=0xD7FF      // Hangul syllables
        | 0xF900..=0xFAFF      // compatibility ideographs
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFFEF      // half- and full-width forms
        | 0x20000..=0x3FFFF); // extensions B and later
    if cjk {
        Fallback::Cjk
    } else {
        Fallback::Symbols
    }
}

/// The fallbacks `text` needs, given what can be shown (`has_glyph`).
/// Whitespace, control characters and ASCII never need one.
pub fn needed(text: &str, mut has_glyph: impl FnMut(char) -> bool) -> Vec<Fallback> {
    let mut out = Vec::new();
    for c in text.chars() {
        if c.is_ascii() || c.is_whitespace() || c.is_control() {
            continue;
        }
        let f = fallback_for(c);
        if !out.contains(&f) && !has_glyph(c) {
            out.push(f);
        }
    }
    out
}

#[cfg(target_arch = "wasm32")]
pub use web::plugin;

#[cfg(target_arch = "wasm32")]
mod web {
    use std::collections::BTreeMap;
    use std::collections::HashSet;

    use bevy::prelude::*;
    use bevy_egui::{EguiContexts, egui};
    use crossbeam_channel::Receiver;
    use hush_chat::drafts::SetDraft;
    use hush_chat::threads::{Thread, ThreadLog};
    use hush_net::wake::{Wake, WakingSender};
    use hush_ui::{FallbackFont, UiConfig, UiRes};
    use js_sys::Reflect;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::{Fallback, needed};

    /// Newest messages of a changed log that are looked at.
    const SCAN_LAST: usize = 200;

    #[derive(Resource)]
    struct Fonts {
        /// Asked for (loaded, loading, or not to be had).
        asked: HashSet<Fallback>,
        loaded: BTreeMap<Fallback, (Vec<u8>, u32)>,
        tx: WakingSender<(Fallback, Vec<u8>)>,
        rx: Receiver<(Fallback, Vec<u8>)>,
    }

    pub fn plugin(app: &mut App) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let tx = app.world().resource::<Wake>().sender(tx);
        app.insert_resource(Fonts {
            asked: HashSet::new(),
            loaded: BTreeMap::new(),
            tx,
            rx,
        })
        .add_systems(Update, (look_for_missing_glyphs, install_fonts));
    }

    /// The URL of a fallback font, as the page's boot script names it.
    fn url_of(f: Fallback) -> Option<String> {
        let fonts = Reflect::get(&js_sys::global(), &JsValue::from_str("hushFonts")).ok()?;
        Reflect::get(&fonts, &JsValue::from_str(f.key()))
            .ok()?
            .as_string()
    }

    fn look_for_missing_glyphs(
        mut contexts: EguiContexts,
        mut fonts: ResMut<Fonts>,
        logs: Query<&ThreadLog, Changed<ThreadLog>>,
        threads: Query<&Thread, Changed<Thread>>,
        mut drafts: MessageReader<SetDraft>,
    ) {
        if fonts.asked.len() == 2 {
            drafts.clear();
            return;
        }
        let Ok(ctx) = contexts.ctx_mut() else {
            return;
        };
        let font = egui::FontId::proportional(14.0);
        let mut want: Vec<Fallback> = Vec::new();
        let mut look = |text: &str| {
            for f in needed(text, |c| ctx.fonts_mut(|fs| fs.has_glyph(&font, c))) {
                if !want.contains(&f) {
                    want.push(f);
                }
            }
        };
        for log in &logs {
            let from = log.messages.len().saturating_sub(SCAN_LAST);
            for m in &log.messages[from..] {
                look(&m.content);
                look(&m.sender_name);
            }
        }
        for t in &threads {
            look(&t.peer_name);
        }
        for d in drafts.read() {
            look(&d.text);
        }
        for f in want {
            if !fonts.asked.insert(f) {
                continue;
            }
            let Some(url) = url_of(f) else {
                tracing::info!("no {} font to fall back on in this build", f.key());
                continue;
            };
            tracing::info!("fetching the {} font for text on screen", f.key());
            let tx = fonts.tx.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match fetch(&url).await {
                    Ok(bytes) => {
                        let _ = tx.send((f, bytes));
                    }
                    Err(e) => tracing::warn!("could not fetch {url}: {e}"),
                }
            });
        }
    }

    async fn fetch(url: &str) -> Result<Vec<u8>, String> {
        let window = web_sys::window().ok_or("no window")?;
        let resp: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
            .await
            .map_err(|e| format!("{e:?}"))?
            .dyn_into()
            .map_err(|_| "not a response")?;
        if !resp.ok() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let buf = JsFuture::from(resp.array_buffer().map_err(|e| format!("{e:?}"))?)
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(js_sys::Uint8Array::new(&buf).to_vec())
    }

    /// Hands every font fetched so far to the UI, in the fallback order.
    fn install_fonts(
        mut fonts: ResMut<Fonts>,
        mut config: ResMut<UiConfig>,
        mut ui: ResMut<UiRes>,
    ) {
        let mut got = false;
        while let Ok((f, bytes)) = fonts.rx.try_recv() {
            fonts.loaded.insert(f, (bytes, 0));
            got = true;
        }
        if !got {
            return;
        }
        config.fallback_fonts = fonts
            .loaded
            .iter()
            .map(|(f, (data, index))| FallbackFont {
                name: format!("fallback-{}", f.key()),
                data: data.clone(),
                index: *index,
            })
            .collect();
        ui.0.fonts_set = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_go_to_their_fonts() {
        for c in ['你', '好', '日', 'に', 'ホ', '한', '，', 'Ａ'] {
            assert_eq!(fallback_for(c), Fallback::Cjk, "{c}");
        }
        for c in ['✓', '🙂', '→', '★', '⌘'] {
            assert_eq!(fallback_for(c), Fallback::Symbols, "{c}");
        }
    }

    #[test]
    fn only_what_cannot_be_shown_asks_for_a_font() {
        let latin = |c: char| (c as u32) < 0x2100;
        assert!(needed("héllo, wörld — ok", latin).is_empty());
        assert_eq!(
            needed("héllo ✓ 你好 🙂 日本", latin),
            [Fallback::Symbols, Fallback::Cjk]
        );
        assert_eq!(needed("你好", |_| true), []);
        assert_eq!(needed("", latin), []);
    }
}
