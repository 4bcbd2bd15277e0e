//! hush's real-time connection as Bevy plugins: the connection lifecycle
//! (connect, heartbeat, reconnect with backoff, auth-failure handling,
//! online/offline), the access token, and thread subscriptions.
//!
//! It runs headless under `MinimalPlugins`. Data flow (ARCHITECTURE.md):
//! socket task → crossbeam → `PreUpdate` drain into [`FrameReceived`] →
//! `Update` state machines → [`SendFrame`] → `PostUpdate` → socket task.

pub mod api;
pub mod config;
pub mod connection;
pub mod kdf;
pub mod platform;
pub mod session;
pub mod subscriptions;
pub mod transport;
pub mod wake;

use bevy::prelude::*;

pub use api::{Api, ApiRequest, ApiResponse, ApiResult, NetError};
pub use config::{NetConfig, ServerUrl};
pub use connection::{
    Connection, ConnectionChanged, ConnectionIntent, FrameReceived, NetworkStatus, SendFrame,
    SetServer,
};
pub use hush_core::policy::connection::{ConnState, DisconnectReason};
pub use session::{Session, SessionError, SessionEvent, SessionIntent};
pub use subscriptions::{
    SubState, Subscription, SubscriptionChanged, SubscriptionIntent, Subscriptions,
};
pub use wake::{NextUpdate, Wake, WakingSender};

/// The order of hush's systems, set in one place.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HushSystems {
    /// `PreUpdate`: socket and HTTP results are drained into typed messages.
    Receive,
    /// `Update`: the session (token) and the connection state machine.
    Connection,
    /// `Update`: subscriptions follow the connection.
    Subscriptions,
    /// `Update`: messaging — store incoming, catch-up, outbox (hush_chat).
    Chat,
    /// `Update`: after everything that changes the world, before the UI reads it.
    Present,
    /// `PostUpdate`: outgoing frames are handed to the socket task.
    Send,
}

/// The connection plugins. Insert a [`Session`] (or send a
/// [`SessionIntent::Login`]) and a [`ConnectionIntent::Connect`] to go live.
pub struct HushNetPlugin {
    pub config: NetConfig,
}

impl Plugin for HushNetPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Wake>().init_resource::<NextUpdate>();
        platform::add_runtime(app);
        let platform = platform::Platform::new(app.world(), &self.config);
        app.insert_resource(Api {
            client: platform.http.clone(),
            config: self.config.clone(),
        })
        .insert_resource(platform)
        .insert_resource(self.config.clone())
        .insert_resource(Connection::new(&self.config))
        .init_resource::<Session>()
        .configure_sets(
            Update,
            (
                HushSystems::Connection,
                HushSystems::Subscriptions,
                HushSystems::Chat,
                HushSystems::Present,
            )
                .chain(),
        )
        .add_plugins((session::plugin, connection::plugin, subscriptions::plugin));
    }
}
