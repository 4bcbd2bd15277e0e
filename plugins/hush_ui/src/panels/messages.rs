//! The message list: virtualised (only visible rows are laid out), so a
//! thread of 100 000 messages scrolls smoothly; day separators; per-message
//! status; sticks to the bottom unless the user scrolled up, with a "new
//! messages" jump.
//!
//! Only the thread's newest pages are loaded (`hush_chat::history`): scrolled
//! to within a screen of the top, the list asks for the page before
//! ([`UiIntent::LoadOlder`]) and, once it is in, moves the view down by its
//! height so that what the user was reading stays where it was.
//!
//! Rows have different heights. Each row's height is estimated from its text
//! when the list is rebuilt and corrected once the row has been drawn; row
//! tops are prefix sums of the heights.

use bevy_egui::egui::{self, Align, Layout, RichText, UiBuilder, Vec2};
use hush_chat::threads::ThreadLog;
use hush_chat::{ChatMessage, LocalEcho, MessageStatus};
use hush_core::ThreadId;

use crate::model::UiIntent;
use crate::theme;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Row {
    Day(String),
    Message(usize),
    Pending(usize),
}

/// Per-thread list state (kept across frames).
#[derive(Default)]
pub struct ListState {
    revision: Option<u64>,
    width: f32,
    rows: Vec<Row>,
    /// The row of each message.
    message_rows: Vec<usize>,
    heights: Vec<f32>,
    /// `tops[i]` is where row `i` starts; `tops[len]` is the total height.
    tops: Vec<f32>,
    at_bottom: bool,
    seen_messages: usize,
    /// Messages that arrived while the user was scrolled up.
    pub unseen: usize,
    jump: bool,
    /// The oldest loaded message at the last rebuild.
    first: Option<(i64, String)>,
    /// How far the view must move down for rows put in above it.
    shift: f32,
    /// The scroll offset on the last frame, and frames drawn.
    offset: f32,
    frames: u32,
    /// Text to mark in the messages (a search, lowercased).
    pub highlight: Option<String>,
    /// The search match the user is on: outlined, and scrolled to once
    /// ([`Self::reveal`]) as soon as it is loaded.
    pub current: Option<(i64, String)>,
    reveal: bool,
}

const HEADER_H: f32 = 18.0;
const PAD: f32 = 14.0;
const DAY_H: f32 = 28.0;

fn estimate(text: &str, width: f32, char_w: f32, line_h: f32) -> f32 {
    let cols = ((width - 40.0) / char_w).max(8.0) as usize;
    let lines: usize = text
        .split('\n')
        .map(|l| l.chars().count().max(1).div_ceil(cols))
        .sum();
    HEADER_H + lines as f32 * line_h + PAD
}

impl ListState {
    fn rebuild(&mut self, log: &ThreadLog, width: f32, char_w: f32, line_h: f32) {
        // Where the oldest loaded message is now (heights corrected as drawn).
        let before = self
            .first
            .take()
            .zip(self.row_of_message(0))
            .map(|(key, r)| (key, self.tops[r]));
        self.rows.clear();
        self.message_rows.clear();
        self.heights.clear();
        let mut last_day = None;
        for (i, m) in log.messages.iter().enumerate() {
            let d = theme::day(m.micros.div_euclid(1000));
            if d != last_day {
                if let Some(d) = d {
                    self.rows.push(Row::Day(theme::day_label(d)));
                    self.heights.push(DAY_H);
                }
                last_day = d;
            }
            self.message_rows.push(self.rows.len());
            self.rows.push(Row::Message(i));
            self.heights
                .push(estimate(&m.content, width, char_w, line_h));
        }
        for (i, p) in log.pending.iter().enumerate() {
            self.rows.push(Row::Pending(i));
            self.heights
                .push(estimate(&p.content, width, char_w, line_h) + 20.0);
        }
        self.recompute_tops();
        self.revision = Some(log.revision);
        self.width = width;
        self.first = log.messages.first().map(|m| (m.micros, m.id.clone()));
        // A page put in above: the old first message moved down by its height.
        if let Some(((micros, id), old_top)) = before {
            let k = log
                .messages
                .partition_point(|m| m.sort_key() < (micros, id.as_str()));
            if k > 0
                && log.messages.get(k).is_some_and(|m| m.id == id)
                && let Some(r) = self.row_of_message(k)
            {
                self.shift += self.tops[r] - old_top;
                // Older messages, not new ones: no "new messages" for them.
                self.seen_messages += k;
            }
        }
    }

    /// The row showing message `k`.
    fn row_of_message(&self, k: usize) -> Option<usize> {
        self.message_rows.get(k).copied()
    }

    fn recompute_tops(&mut self) {
        self.tops.clear();
        self.tops.reserve(self.heights.len() + 1);
        let mut y = 0.0;
        for h in &self.heights {
            self.tops.push(y);
            y += h;
        }
        self.tops.push(y);
    }

    /// Scrolls to `key` (server µs, id) once it is loaded, and outlines it.
    pub fn reveal(&mut self, key: (i64, String)) {
        self.current = Some(key);
        self.reveal = true;
    }

    /// Rows laid out on the last frame (for tests and the frame-time bench).
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }
}

fn status_text(s: &MessageStatus) -> (String, egui::Color32) {
    match s {
        MessageStatus::Queued => ("queued".into(), theme::SECONDARY),
        MessageStatus::Sending => ("sending…".into(), theme::SECONDARY),
        MessageStatus::Sent => ("sent".into(), theme::MUTED),
        MessageStatus::Failed(r) => (format!("failed: {r}"), theme::ERROR),
        MessageStatus::Undecryptable(_) => ("undecryptable".into(), theme::AMBER),
    }
}

fn bubble<R>(ui: &mut egui::Ui, mine: bool, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    let layout = if mine {
        Layout::top_down(Align::Max)
    } else {
        Layout::top_down(Align::Min)
    };
    ui.with_layout(layout, |ui| {
        egui::Frame::new()
            .fill(if mine {
                theme::MINE_BG
            } else {
                theme::THEIRS_BG
            })
            .corner_radius(6.0)
            .inner_margin(egui::Margin::symmetric(8, 4))
            .show(ui, |ui| {
                ui.set_max_width((ui.available_width() * 0.8).max(200.0));
                add(ui)
            })
            .inner
    })
    .inner
}

/// `text` with every (case-insensitive) `needle` on a marked background.
/// Text whose lowercase form has other byte offsets is shown plain.
fn marked(ui: &egui::Ui, text: &str, needle: &str) -> egui::text::LayoutJob {
    let mut job = egui::text::LayoutJob::default();
    let normal = egui::TextFormat {
        font_id: egui::TextStyle::Body.resolve(ui.style()),
        color: ui.visuals().text_color(),
        ..Default::default()
    };
    let mark = egui::TextFormat {
        background: theme::AMBER.gamma_multiply(0.45),
        ..normal.clone()
    };
    let lower = text.to_lowercase();
    let mut at = 0;
    if lower.len() == text.len() && !needle.is_empty() {
        while let Some(i) = lower[at..].find(needle) {
            let start = at + i;
            let end = start + needle.len();
            if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                break;
            }
            job.append(&text[at..start], 0.0, normal.clone());
            job.append(&text[start..end], 0.0, mark.clone());
            at = end;
        }
    }
    job.append(&text[at..], 0.0, normal);
    job
}

fn message_row(ui: &mut egui::Ui, m: &ChatMessage, highlight: Option<&str>) {
    bubble(ui, m.mine, |ui| {
        ui.horizontal(|ui| {
            let who = if m.mine {
                "You"
            } else {
                m.sender_name.as_str()
            };
            ui.label(RichText::new(who).strong());
            ui.label(
                RichText::new(theme::clock(m.timestamp_ms))
                    .small()
                    .color(theme::MUTED),
            );
            if m.mine || matches!(m.status, MessageStatus::Undecryptable(_)) {
                let (s, c) = status_text(&m.status);
                ui.label(RichText::new(s).small().color(c));
            }
        });
        match &m.status {
            MessageStatus::Undecryptable(why) => {
                ui.label(
                    RichText::new("This message could not be decrypted.")
                        .italics()
                        .color(theme::AMBER),
                )
                .on_hover_text(why);
            }
            _ => match highlight {
                Some(h) => {
                    ui.label(marked(ui, &m.content, h));
                }
                None => {
                    ui.label(&m.content);
                }
            },
        }
    });
}

fn pending_row(ui: &mut egui::Ui, p: &LocalEcho, out: &mut Vec<UiIntent>) {
    bubble(ui, true, |ui| {
        ui.horizontal(|ui| {
            ui.label(RichText::new("You").strong());
            ui.label(
                RichText::new(theme::clock(p.timestamp_ms))
                    .small()
                    .color(theme::MUTED),
            );
            let (s, c) = status_text(&p.status);
            ui.label(RichText::new(s).small().color(c));
        });
        ui.label(&p.content);
        if let MessageStatus::Failed(_) = p.status {
            ui.horizontal(|ui| {
                if ui.small_button("Retry").clicked() {
                    out.push(UiIntent::RetrySend(p.seq));
                }
                if ui.small_button("Cancel").clicked() {
                    out.push(UiIntent::CancelSend(p.seq));
                }
            });
        }
    });
}

/// Shows a thread's messages; returns retry/cancel intents, and asks for
/// older messages when scrolled near the top.
pub fn list(
    ui: &mut egui::Ui,
    thread: ThreadId,
    log: &ThreadLog,
    st: &mut ListState,
) -> Vec<UiIntent> {
    let mut out = Vec::new();
    let width = ui.available_width();
    let font = egui::TextStyle::Body.resolve(ui.style());
    let line_h = ui.fonts_mut(|f| f.row_height(&font));
    let char_w = font.size * 0.55;
    if st.revision != Some(log.revision) || (st.width - width).abs() > 1.0 {
        st.rebuild(log, width, char_w, line_h);
    }
    // New messages while scrolled up are counted for the jump button.
    let total_msgs = log.messages.len() + log.pending.len();
    if total_msgs > st.seen_messages {
        if !st.at_bottom && st.seen_messages > 0 {
            st.unseen += total_msgs - st.seen_messages;
        }
        st.seen_messages = total_msgs;
    }
    let mut area = egui::ScrollArea::vertical()
        .id_salt("messages")
        .auto_shrink([false, false])
        .stick_to_bottom(true);
    let current_row = st.current.as_ref().and_then(|(micros, id)| {
        let k = log
            .messages
            .partition_point(|m| m.sort_key() < (*micros, id.as_str()));
        log.messages
            .get(k)
            .filter(|m| m.id == *id)
            .and_then(|_| st.row_of_message(k))
    });
    if st.reveal
        && let Some(r) = current_row
    {
        // A third of the way down the view, not glued to its edge.
        let view_h = ui.available_height();
        area = area.vertical_scroll_offset((st.tops[r] - view_h / 3.0).max(0.0));
        st.reveal = false;
        st.shift = 0.0;
    } else if st.jump {
        area = area.vertical_scroll_offset(st.tops.last().copied().unwrap_or(0.0));
        st.jump = false;
        st.unseen = 0;
    } else if st.shift != 0.0 {
        area = area.vertical_scroll_offset(st.offset + st.shift);
        st.shift = 0.0;
    }
    let output = area.show_viewport(ui, |ui, viewport| {
        let total = *st.tops.last().unwrap_or(&0.0);
        ui.set_height(total);
        ui.set_width(width);
        let origin = ui.max_rect().min;
        let first = st
            .tops
            .partition_point(|t| *t <= viewport.min.y)
            .saturating_sub(1);
        let mut changed = false;
        let mut i = first;
        while i < st.rows.len() && st.tops[i] < viewport.max.y {
            let rect = egui::Rect::from_min_size(
                origin + Vec2::new(0.0, st.tops[i]),
                Vec2::new(width - 12.0, st.heights[i]),
            );
            let drawn = ui
                .scope_builder(UiBuilder::new().max_rect(rect), |ui| match &st.rows[i] {
                    Row::Day(label) => {
                        ui.vertical_centered(|ui| {
                            ui.add_space(6.0);
                            ui.label(RichText::new(label).small().color(theme::MUTED));
                        });
                    }
                    Row::Message(k) => {
                        ui.add_space(2.0);
                        let highlight = st.highlight.as_deref();
                        if current_row == Some(i) {
                            egui::Frame::new()
                                .stroke(egui::Stroke::new(2.0, theme::AMBER))
                                .corner_radius(6.0)
                                .show(ui, |ui| message_row(ui, &log.messages[*k], highlight));
                        } else {
                            message_row(ui, &log.messages[*k], highlight);
                        }
                    }
                    Row::Pending(k) => {
                        ui.add_space(2.0);
                        pending_row(ui, &log.pending[*k], &mut out);
                    }
                })
                .response;
            let h = drawn.rect.height() + 4.0;
            if (h - st.heights[i]).abs() > 0.5 {
                // A row that starts above the view pushes what is read: the
                // view moves with it (unless it sticks to the bottom anyway).
                if st.tops[i] < viewport.min.y && !st.at_bottom {
                    st.shift += h - st.heights[i];
                }
                st.heights[i] = h;
                changed = true;
            }
            i += 1;
        }
        if changed {
            st.recompute_tops();
            ui.ctx().request_repaint();
        }
    });
    let bottom = output.state.offset.y + output.inner_rect.height();
    st.at_bottom = bottom >= output.content_size.y - 4.0;
    st.offset = output.state.offset.y;
    st.frames = st.frames.saturating_add(1);
    // The first frame is drawn at the top before the list sticks to the bottom.
    if log.older && st.frames > 2 && st.offset < output.inner_rect.height() {
        out.push(UiIntent::LoadOlder(thread));
    }
    if st.at_bottom {
        st.unseen = 0;
    }
    if st.unseen > 0 {
        let r = output.inner_rect;
        let pos = egui::pos2(r.center().x - 70.0, r.max.y - 36.0);
        egui::Area::new(ui.id().with("jump"))
            .fixed_pos(pos)
            .show(ui.ctx(), |ui| {
                if ui.button(format!("↓ {} new messages", st.unseen)).clicked() {
                    st.jump = true;
                    ui.ctx().request_repaint();
                }
            });
    }
    out
}
