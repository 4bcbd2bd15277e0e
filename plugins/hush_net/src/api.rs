//! HTTP requests to the server (native: reqwest on the tokio runtime; web:
//! fetch), answered off the main thread.
//!
//! The one path for replies: a module registers a reply type with
//! [`ApiAppExt::add_api_replies`], asks with [`ApiClient::request`] and a tag
//! saying what the request was for, and reads each answer as an
//! [`ApiReply`] message, drained in `PreUpdate` ([`NetSystems::Receive`]).
//! The world is never touched off the main thread.

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};

use crate::NetSystems;
use crate::config::NetConfig;
use crate::platform;
pub use crate::request::{ApiRequest, ApiResponse, ApiResult, Method, NetError};

/// The HTTP client, a resource.
#[derive(Resource, Clone)]
pub struct Api {
    pub(crate) client: platform::HttpClient,
    pub(crate) config: NetConfig,
}

impl Api {
    /// Sends `req`; `done` runs off the main thread with the outcome.
    pub fn send(&self, req: ApiRequest, done: impl FnOnce(ApiResult) + Send + 'static) {
        match &self.config.scripted {
            Some(net) => net.request(req, Box::new(done)),
            None => self.client.send(&self.config, req, Box::new(done)),
        }
    }

    pub fn server(&self) -> &crate::config::ServerUrl {
        &self.config.server
    }
}

/// The answer to a request tagged `tag` (what the request was for).
#[derive(Message, Debug)]
pub struct ApiReply<T: Send + Sync + 'static> {
    pub tag: T,
    pub result: ApiResult,
}

/// Where answers of one reply type wait to be drained.
#[derive(Resource)]
pub struct ApiReplies<T: Send + Sync + 'static> {
    tx: Sender<ApiReply<T>>,
    rx: Receiver<ApiReply<T>>,
}

impl<T: Send + Sync + 'static> Default for ApiReplies<T> {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        ApiReplies { tx, rx }
    }
}

/// Registers a reply type.
pub trait ApiAppExt {
    /// Answers to requests tagged `T` become [`ApiReply<T>`] messages.
    fn add_api_replies<T: Send + Sync + 'static>(&mut self) -> &mut Self;
}

impl ApiAppExt for App {
    fn add_api_replies<T: Send + Sync + 'static>(&mut self) -> &mut Self {
        self.init_resource::<ApiReplies<T>>()
            .add_message::<ApiReply<T>>()
            .add_systems(PreUpdate, drain_replies::<T>.in_set(NetSystems::Receive))
    }
}

fn drain_replies<T: Send + Sync + 'static>(
    replies: Res<ApiReplies<T>>,
    mut out: MessageWriter<ApiReply<T>>,
) {
    out.write_batch(replies.rx.try_iter());
}

/// Sends requests whose answers come back as [`ApiReply<T>`].
#[derive(SystemParam)]
pub struct ApiClient<'w, T: Send + Sync + 'static> {
    api: Res<'w, Api>,
    replies: Res<'w, ApiReplies<T>>,
}

impl<T: Send + Sync + 'static> ApiClient<'_, T> {
    /// Sends `req`; its answer comes back with `tag`.
    pub fn request(&self, req: ApiRequest, tag: T) {
        let tx = self.replies.tx.clone();
        self.api.send(req, move |result| {
            let _ = tx.send(ApiReply { tag, result });
        });
    }
}
