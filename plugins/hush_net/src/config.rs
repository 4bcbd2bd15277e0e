//! Where to connect and how: the server URLs, timers, TLS trust.

use std::time::Duration;

use bevy::prelude::*;
use hush_core::policy::connection::ConnectionPolicy;

/// A server's base URL (`http://host:port` or `https://…`, optional path prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    base: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the server URL must start with http:// or https://: {0:?}")]
    Scheme(String),
    #[error("the server URL has no host: {0:?}")]
    NoHost(String),
    #[error("no server URL given")]
    Empty,
}

impl ServerUrl {
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let t = s.trim().trim_end_matches('/');
        let rest = t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))
            .ok_or_else(|| UrlError::Scheme(s.to_owned()))?;
        if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
            return Err(UrlError::NoHost(s.to_owned()));
        }
        Ok(ServerUrl { base: t.to_owned() })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn is_tls(&self) -> bool {
        self.base.starts_with("https://")
    }

    /// `host:port` (port defaulted from the scheme).
    pub fn authority(&self) -> String {
        let rest = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, r)| r);
        let host = rest.split('/').next().unwrap_or(rest);
        let has_port = host.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty()
                && !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && !p.contains(']')
        });
        if has_port {
            host.to_owned()
        } else {
            format!("{host}:{}", if self.is_tls() { 443 } else { 80 })
        }
    }

    /// The REST URL of `path` (which starts with `/api/…` or `/health`).
    pub fn http(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The WebSocket URL, `ws(s)://host/ws`.
    pub fn ws(&self) -> String {
        let (scheme, rest) = if let Some(r) = self.base.strip_prefix("https://") {
            ("wss://", r)
        } else {
            (
                "ws://",
                self.base.strip_prefix("http://").unwrap_or(&self.base),
            )
        };
        format!("{scheme}{rest}/ws")
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

/// The URLs of one vault's relay nodes, tried in turn: a failed connection
/// moves on to the next (see `connection.rs`). Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerList(Vec<ServerUrl>);

impl ServerList {
    /// One URL, or several separated by commas or white space (the same
    /// text on the command line, in the window's settings and in `?server=`).
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        Self::parse_all([s])
    }

    /// The URLs of several such texts (a repeated `--server`), duplicates
    /// dropped.
    pub fn parse_all<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Self, UrlError> {
        let mut urls: Vec<ServerUrl> = Vec::new();
        for text in texts {
            for part in text.split(|c: char| c == ',' || c.is_whitespace()) {
                if part.is_empty() {
                    continue;
                }
                let u = ServerUrl::parse(part)?;
                if !urls.contains(&u) {
                    urls.push(u);
                }
            }
        }
        if urls.is_empty() {
            return Err(UrlError::Empty);
        }
        Ok(ServerList(urls))
    }

    pub fn first(&self) -> &ServerUrl {
        &self.0[0]
    }

    pub fn urls(&self) -> &[ServerUrl] {
        &self.0
    }

    /// The URL to try after `current` (the first again after the last, or
    /// when `current` is not on the list).
    pub fn after(&self, current: &ServerUrl) -> &ServerUrl {
        match self.0.iter().position(|u| u == current) {
            Some(i) => &self.0[(i + 1) % self.0.len()],
            None => self.first(),
        }
    }
}

impl From<ServerUrl> for ServerList {
    fn from(u: ServerUrl) -> Self {
        ServerList(vec![u])
    }
}

impl std::fmt::Display for ServerList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, u) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{u}")?;
        }
        Ok(())
    }
}

/// The connection's settings, a resource.
#[derive(Resource, Debug, Clone)]
pub struct NetConfig {
    /// The server in use now: one of `servers`.
    pub server: ServerUrl,
    /// Every node this client may use.
    pub servers: ServerList,
    pub policy: ConnectionPolicy,
    /// A PEM CA certificate to trust for `https`/`wss` besides the system roots
    /// (a private CA, or a self-signed relay).
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Refresh the token this long before it expires.
    pub refresh_margin: Duration,
    /// Seed of the reconnect jitter (`None`: random).
    pub jitter_seed: Option<u64>,
    /// How long an HTTP request may take.
    pub http_timeout: Duration,
    /// A network played by a test instead of real sockets and HTTP
    /// ([`crate::scripted`]).
    pub scripted: Option<crate::scripted::ScriptedNet>,
}

impl NetConfig {
    pub fn new(servers: impl Into<ServerList>) -> Self {
        let servers = servers.into();
        NetConfig {
            server: servers.first().clone(),
            servers,
            policy: ConnectionPolicy::default(),
            ca_cert_pem: None,
            refresh_margin: Duration::from_secs(300),
            jitter_seed: None,
            http_timeout: Duration::from_secs(20),
            scripted: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ServerUrl::parse(" http://127.0.0.1:8000/ ").unwrap();
        assert_eq!(u.ws(), "ws://127.0.0.1:8000/ws");
        assert_eq!(u.http("/api/auth"), "http://127.0.0.1:8000/api/auth");
        assert_eq!(u.authority(), "127.0.0.1:8000");
        let t = ServerUrl::parse("https://chat.example/hush").unwrap();
        assert!(t.is_tls());
        assert_eq!(t.ws(), "wss://chat.example/hush/ws");
        assert_eq!(t.authority(), "chat.example:443");
        assert_eq!(
            ServerUrl::parse("http://[::1]:9").unwrap().authority(),
            "[::1]:9"
        );
        assert_eq!(
            ServerUrl::parse("http://[::1]").unwrap().authority(),
            "[::1]:80"
        );
        for bad in [
            "ftp://x",
            "localhost:8000",
            "http://",
            "http:///x",
            "http://a b",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
            assert!(ServerList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_lists() {
        let l = ServerList::parse(" http://a:1/, http://b:2 ,http://c:3").unwrap();
        let [a, b, c] = [0, 1, 2].map(|i| l.urls()[i].clone());
        assert_eq!(l.urls().len(), 3);
        assert_eq!((l.after(&a), l.after(&b), l.after(&c)), (&b, &c, &a));
        let elsewhere = ServerUrl::parse("http://z:9").unwrap();
        assert_eq!(l.after(&elsewhere), &a);
        assert_eq!(l.to_string(), "http://a:1, http://b:2, http://c:3");
        // Its own display parses back; repeated flags join; duplicates go.
        assert_eq!(ServerList::parse(&l.to_string()).unwrap(), l);
        let joined = ServerList::parse_all(["http://a:1", "http://b:2 http://a:1/", "http://c:3"]);
        assert_eq!(joined.unwrap(), l);
        let one = ServerList::parse("http://a:1").unwrap();
        assert_eq!((one.urls().len(), one.after(&a)), (1, &a));
        assert_eq!(ServerList::parse(" , "), Err(UrlError::Empty));
        assert_eq!(NetConfig::new(l.clone()).server, a);
    }
}
