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
pub mod request;
pub mod scripted;
pub mod session;
pub mod subscriptions;
pub mod transport;
pub mod wake;

use bevy::prelude::*;

pub use api::{
    Api, ApiAppExt, ApiClient, ApiReplies, ApiReply, ApiRequest, ApiResponse, ApiResult, NetError,
};
pub use config::{NetConfig, ServerList, ServerUrl, UrlError};
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

/// The order of the connection's systems, set in one place. Higher layers
/// order their own phases after [`NetSystems::Subscriptions`].
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetSystems {
    /// `PreUpdate`: the socket task's events (and, in a browser, the
    /// network's online/offline changes) are drained into typed messages.
    Receive,
    /// `Update`: the session: the access token, signing in again.
    Session,
    /// `Update`: the connection state machine.
    Connection,
    /// `Update`: subscriptions follow the connection.
    Subscriptions,
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
                NetSystems::Session,
                NetSystems::Connection,
                NetSystems::Subscriptions,
            )
                .chain(),
        )
        .add_plugins((session::plugin, connection::plugin, subscriptions::plugin));
    }
}
