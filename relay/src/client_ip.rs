//! The client's address, which rate limits and the brute-force block are
//! keyed on: the TCP peer, or, when the peer is a trusted proxy
//! (`--trusted-proxy CIDR`), the address it names in `X-Forwarded-For` or
//! `Forwarded`. Without a trusted proxy these headers are ignored, since
//! anyone can send them.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The client behind `peer`: walking the forwarding chain from the right,
/// the first address that is not a trusted proxy (a client cannot forge the
/// entries its trusted proxies appended).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("forwarded") {
        for part in v.to_str().unwrap_or("").split([',', ';']) {
            let (k, val) = part.split_once('=').unwrap_or(("", ""));
            if k.trim().eq_ignore_ascii_case("for")
                && let Some(ip) = parse_addr(val)
            {
                chain.push(ip);
            }
        }
    }
    if chain.is_empty() {
        for v in headers.get_all("x-forwarded-for") {
            chain.extend(v.to_str().unwrap_or("").split(',').filter_map(parse_addr));
        }
    }
    let mut client = peer;
    for ip in chain.into_iter().rev() {
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `"[2001:db8::1]:80"`, `2001:db8::1`.
fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// Puts the client's address where every handler looks for it
/// (`ConnectInfo<SocketAddr>`).
pub async fn resolve(
    State(trusted): State<std::sync::Arc<Vec<IpNet>>>,
    mut req: Request,
    next: Next,
) -> Response {
    if !trusted.is_empty()
        && let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
    {
        let ip = client_ip(peer.ip(), req.headers(), &trusted);
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_count_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.7"));
        let h = headers(&[(
            "forwarded",
            r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https"#,
        )]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::7"));
        // Nothing usable: the proxy itself.
        let h = headers(&[("x-forwarded-for", "garbage")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }
}
