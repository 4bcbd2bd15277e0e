//! The connection status indicator, always visible, and the offline and
//! storage banners.

use bevy_egui::egui::{self, Color32, RichText, Sense, Stroke, Vec2};

use crate::model::{StatusView, UiIntent};
use crate::theme;

fn colour(s: &StatusView) -> Color32 {
    match s {
        StatusView::Connected => theme::SUCCESS,
        StatusView::Connecting | StatusView::Idle => theme::SECONDARY,
        StatusView::Reconnecting { .. } => theme::AMBER,
        StatusView::Disconnected { .. } => theme::ERROR,
    }
}

/// Icon and label; "Retry now" while waiting. `time` (seconds) drives the
/// pulse of the reconnecting icon.
pub fn indicator(ui: &mut egui::Ui, s: &StatusView, time: f64) -> Option<UiIntent> {
    let c = colour(s);
    let mut out = None;
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
        let p = ui.painter();
        let center = rect.center();
        match s {
            StatusView::Connected => {
                p.circle_filled(center, 5.0, c);
            }
            StatusView::Connecting | StatusView::Idle | StatusView::Disconnected { .. } => {
                p.circle_stroke(center, 4.5, Stroke::new(1.5, c));
            }
            StatusView::Reconnecting { .. } => {
                // The seed's pulse: opacity 1 → 0.5 → 1 every second.
                let a = 0.75 + 0.25 * (time * std::f64::consts::TAU).cos();
                let c = c.gamma_multiply(a as f32);
                p.circle_stroke(center, 4.5, Stroke::new(1.5, c));
                let half = egui::Rect::from_min_max(
                    center - Vec2::new(5.0, 5.0),
                    center + Vec2::new(0.0, 5.0),
                );
                p.with_clip_rect(half).circle_filled(center, 5.0, c);
                // Four steps a second: a pulse, not a continuous redraw.
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(250));
            }
        }
        ui.label(RichText::new(s.label()).color(c));
        if matches!(
            s,
            StatusView::Reconnecting { .. }
                | StatusView::Disconnected {
                    retryable: true,
                    ..
                }
        ) && ui.small_button("Retry now").clicked()
        {
            out = Some(UiIntent::RetryNow);
        }
        if let StatusView::Reconnecting { .. } = s {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(250));
        }
    });
    out
}

/// The bar along the bottom while not connected: sending still works, the
/// messages wait in the outbox.
pub fn offline_banner(ui: &mut egui::Ui, s: &StatusView, offline: bool) {
    let (text, bg) = match s {
        StatusView::Connected | StatusView::Idle => return,
        StatusView::Reconnecting { .. } | StatusView::Connecting if !offline => (
            "Reconnecting… messages you send are queued and go out when the connection is back.",
            theme::AMBER,
        ),
        _ => (
            "You are offline. Messages you send are queued and go out when you are back online.",
            theme::ERROR,
        ),
    };
    egui::Frame::new()
        .fill(bg)
        .inner_margin(6.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new(text).color(Color32::WHITE));
        });
}

/// The bar along the bottom after the store refused a write (a full disk):
/// what it means for the user's messages. Returns true when dismissed.
/// A write the store refused. `retrying`: the store keeps the change and
/// tries again (the browser's), rather than refusing what could not be
/// written (the disk's).
pub fn storage_banner(ui: &mut egui::Ui, error: &str, retrying: bool) -> bool {
    let mut dismissed = false;
    egui::Panel::bottom("storage_banner").show(ui, |ui| {
        egui::Frame::new()
            .fill(theme::ERROR)
            .inner_margin(6.0)
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.horizontal_wrapped(|ui| {
                    let text = if retrying {
                        format!(
                            "Could not save in this browser ({error}). Nothing is lost while \
                             this tab stays open: hush keeps it and tries again every few \
                             seconds. Free some space for this site, or allow it more, \
                             before you close the tab."
                        )
                    } else {
                        format!(
                            "Could not save to disk ({error}). Nothing is lost: incoming \
                             messages are fetched again, and a message that could not be \
                             saved was not sent. Free some space."
                        )
                    };
                    ui.label(RichText::new(text).color(Color32::WHITE));
                    dismissed = ui.button("Dismiss").clicked();
                });
            });
    });
    dismissed
}

/// The connection's details (behind the status bar's Details button):
/// what no other client shows, in a grid.
pub fn details(ui: &mut egui::Ui, r: &hush_chat::status::StatusReport) {
    let ago = |s: f64| {
        if s < 90.0 {
            format!("{s:.0} s ago")
        } else if s < 5400.0 {
            format!("{:.0} min ago", s / 60.0)
        } else {
            format!("{:.1} h ago", s / 3600.0)
        }
    };
    egui::Grid::new("connection-details")
        .num_columns(2)
        .spacing([16.0, 6.0])
        .show(ui, |ui| {
            ui.label("Server");
            ui.label(RichText::new(&r.server).monospace());
            ui.end_row();
            ui.label("Features");
            ui.label(if r.features.is_empty() {
                "none (a stock server)".to_owned()
            } else {
                r.features.join(", ")
            });
            ui.end_row();
            ui.label("Round trip");
            ui.label(match r.rtt_ms {
                Some(ms) => format!("{ms:.1} ms"),
                None if r.connected => "measuring…".to_owned(),
                None => "not connected".to_owned(),
            });
            ui.end_row();
            ui.label("Reconnects");
            ui.label(format!("{} in the last 24 h", r.reconnects_24h));
            ui.end_row();
            ui.label("Last disconnect");
            ui.label(match &r.last_disconnect {
                Some(d) => format!("{} ({})", d.reason, ago(d.ago_s)),
                None => "none".to_owned(),
            });
            ui.end_row();
            ui.label("Queued");
            ui.label(match (r.queued, r.oldest_queued_s) {
                (0, _) => "nothing".to_owned(),
                (n, Some(s)) => format!("{n} messages, the oldest written {}", ago(s)),
                (n, None) => format!("{n} messages"),
            });
            ui.end_row();
            ui.label("Last catch-up");
            ui.label(match &r.last_catchup {
                Some(c) => match c.took_s {
                    Some(t) => format!("{} messages in {t:.2} s", c.messages),
                    None => format!("{} messages so far…", c.messages),
                },
                None => "none yet".to_owned(),
            });
            ui.end_row();
        });
}
