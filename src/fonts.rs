//! The window's fallback fonts, found through the system: fontdb reads the
//! directories fontconfig names. For each script in [`PROBES`], the first
//! installed face that draws it (regular, sans before serif) is handed to
//! the UI, which puts it after egui's own fonts. egui draws outlines only,
//! so colour-only faces (bitmap or COLR emoji such as Noto Color Emoji) are
//! never chosen; emoji that egui's small Noto Emoji lacks (🙂 among them)
//! come from a monochrome system face such as Symbola (fonts-symbola). The
//! look-up (a quarter of a second with a few hundred faces) runs beside
//! the first frames.

use bevy::prelude::*;
use fontdb::{Database, ID, Style};
use hush_net::Wake;
use hush_ui::{FallbackFont, UiConfig, UiRes};

/// A character of each script a chat in any language needs.
pub const PROBES: &[(&str, char)] = &[
    ("CJK", '你'),
    ("kana", 'か'),
    ("Hangul", '한'),
    ("Arabic", 'ب'),
    ("Hebrew", 'ש'),
    ("Devanagari", 'क'),
    ("Thai", 'ก'),
    ("Cyrillic", 'Ж'),
    ("Greek", 'λ'),
    ("symbols", '✓'),
    ("emoji", '🙂'),
];

/// At most this many faces are loaded (each is a few MB in memory).
const MAX_FACES: usize = 8;

/// The system's fonts.
pub fn system_database() -> Database {
    let mut db = Database::new();
    db.load_system_fonts();
    db
}

/// Which face of `db` draws each probe's script: faces in the order chosen,
/// each with the scripts it was chosen for.
pub fn choose(db: &Database, probes: &[(&'static str, char)]) -> Vec<(ID, Vec<&'static str>)> {
    let mut faces: Vec<_> = db.faces().collect();
    let cjk = cjk_variant();
    // Regular upright sans faces first, the user's CJK variant before the
    // others; then the name, for a stable choice.
    faces.sort_by_key(|f| {
        let family = f.families.first().map(|(n, _)| n.as_str()).unwrap_or("");
        (
            f.style != Style::Normal,
            f.weight.0.abs_diff(400),
            !family.contains("Sans") || family.contains("Mono"),
            family.contains("CJK") && !family.ends_with(cjk),
            f.monospaced,
            family.to_owned(),
        )
    });
    let mut chosen: Vec<(ID, Vec<&'static str>)> = Vec::new();
    let mut missing: Vec<(&'static str, char)> = probes.to_vec();
    for f in faces {
        if missing.is_empty() || chosen.len() >= MAX_FACES {
            break;
        }
        let covered = db
            .with_face_data(f.id, |data, index| {
                let Ok(face) = ttf_parser::Face::parse(data, index) else {
                    return Vec::new();
                };
                if !draws_outlines(&face) {
                    return Vec::new();
                }
                missing
                    .iter()
                    .filter(|(_, c)| face.glyph_index(*c).is_some())
                    .map(|(name, _)| *name)
                    .collect()
            })
            .unwrap_or_default();
        if !covered.is_empty() {
            missing.retain(|(n, _)| !covered.contains(n));
            chosen.push((f.id, covered));
        }
    }
    chosen
}

/// Which regional variant of a CJK family (`Noto Sans CJK SC`…) suits
/// the user's language: Japanese, Korean, traditional or simplified Chinese.
fn cjk_variant() -> &'static str {
    let lang = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_default();
    match lang.get(..5).unwrap_or(&lang) {
        l if l.starts_with("ja") => "JP",
        l if l.starts_with("ko") => "KR",
        "zh_TW" => "TC",
        "zh_HK" => "HK",
        _ => "SC",
    }
}

/// Whether egui can draw the face: it has outlines, and they are not the
/// blank stand-ins of a colour font.
fn draws_outlines(face: &ttf_parser::Face) -> bool {
    let t = face.tables();
    (t.glyf.is_some() || t.cff.is_some() || t.cff2.is_some())
        && t.cbdt.is_none()
        && t.sbix.is_none()
        && t.colr.is_none()
        && t.svg.is_none()
}

/// The chosen faces' data, ready for the UI.
pub fn load(db: &Database, chosen: &[(ID, Vec<&'static str>)]) -> Vec<FallbackFont> {
    chosen
        .iter()
        .filter_map(|(id, scripts)| {
            let name = db.face(*id)?.post_script_name.clone();
            let (data, index) = db.with_face_data(*id, |d, i| (d.to_vec(), i))?;
            tracing::debug!("fallback font {name} for {}", scripts.join(", "));
            Some(FallbackFont { name, data, index })
        })
        .collect()
}

/// The system's fallback fonts for every script it has one for.
pub fn system_fallbacks() -> Vec<FallbackFont> {
    let db = system_database();
    load(&db, &choose(&db, PROBES))
}

#[derive(Resource)]
struct Found(crossbeam_channel::Receiver<Vec<FallbackFont>>);

/// Looks the fallback fonts up on a thread and hands them to the UI when
/// found (waking a sleeping window). Needs `HushNetPlugin` (its `Wake`).
pub fn plugin(app: &mut App) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let tx = app.world().resource::<Wake>().sender(tx);
    let spawned = std::thread::Builder::new()
        .name("hush-fonts".into())
        .spawn(move || {
            let _ = tx.send(system_fallbacks());
        });
    if let Err(e) = spawned {
        tracing::warn!("no fallback fonts: {e}");
    }
    app.insert_resource(Found(rx))
        .add_systems(Update, hand_over);
}

fn hand_over(found: Res<Found>, mut config: ResMut<UiConfig>, mut ui: ResMut<UiRes>) {
    if let Ok(fonts) = found.0.try_recv() {
        config.fallback_fonts = fonts;
        ui.0.fonts_set = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_of(fonts: &[&'static [u8]]) -> Database {
        let mut db = Database::new();
        for f in fonts {
            db.load_font_data(f.to_vec());
        }
        db
    }

    const UBUNTU: &[u8] = include_bytes!("../assets/fonts/Ubuntu-Light.ttf");

    #[test]
    fn each_script_gets_the_first_face_that_draws_it() {
        let db = db_of(&[UBUNTU]);
        let chosen = choose(&db, &[("Latin", 'a'), ("Greek", 'λ'), ("CJK", '你')]);
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].1, ["Latin", "Greek"], "Ubuntu has no CJK");
        let fonts = load(&db, &chosen);
        assert_eq!(fonts[0].data, UBUNTU);
        assert_eq!(fonts[0].index, 0);
    }

    #[test]
    fn nothing_is_chosen_from_no_fonts_or_for_nothing() {
        assert!(choose(&Database::new(), PROBES).is_empty());
        assert!(choose(&db_of(&[UBUNTU]), &[]).is_empty());
    }

    #[test]
    fn garbage_in_the_font_directory_is_passed_over() {
        let db = db_of(&[b"not a font at all", UBUNTU]);
        assert_eq!(choose(&db, &[("Latin", 'a')]).len(), 1);
    }

    /// On this machine (CI installs fonts-wqy-microhei, fonts-symbola,
    /// DejaVu and Noto Color Emoji): CJK and emoji come from system faces,
    /// and the colour emoji face, which egui cannot draw, is never chosen.
    #[test]
    fn the_system_has_cjk_and_emoji_faces_and_no_colour_face_is_chosen() {
        let db = system_database();
        let chosen = choose(&db, PROBES);
        for script in ["CJK", "emoji"] {
            chosen
                .iter()
                .find(|(_, s)| s.contains(&script))
                .unwrap_or_else(|| {
                    panic!("no {script} font: CI installs fonts-wqy-microhei and fonts-symbola")
                });
        }
        for (id, _) in &chosen {
            let f = db.face(*id).unwrap();
            assert!(
                !f.post_script_name.contains("ColorEmoji"),
                "{} is a colour font",
                f.post_script_name
            );
        }
    }
}
