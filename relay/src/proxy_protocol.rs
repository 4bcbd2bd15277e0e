//! The PROXY protocol (HAProxy's v1 text and v2 binary headers): a TCP load
//! balancer in front of the relay puts the client's address before the
//! connection's own bytes. It is read only from a `--trusted-proxy`
//! address, and then only when the connection starts with one; from anyone
//! else those bytes are just a bad request. The parsing is the `ppp` crate's.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_PREFIX: &[u8] = ppp::v2::PROTOCOL_PREFIX;
/// A v1 header is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed PROXY header")]
    Malformed,
}

/// What the connection's first bytes say, once the caller has seen at least
/// one byte.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    V1,
    V2,
    /// No header: an HTTP request or a TLS handshake.
    Plain,
    /// Too few bytes yet to tell.
    Unsure,
}

fn classify(first: &[u8]) -> Start {
    for (prefix, kind) in [(V1_PREFIX, Start::V1), (V2_PREFIX, Start::V2)] {
        let n = first.len().min(prefix.len());
        if first[..n] == prefix[..n] {
            return if n == prefix.len() {
                kind
            } else {
                Start::Unsure
            };
        }
    }
    Start::Plain
}

/// Reads a PROXY header off `tcp` if it starts with one, and returns the
/// client it names. `None`: no header, or a header that names no client
/// (v1 `UNKNOWN`, v2 `LOCAL`, a Unix socket), so the peer stands. The caller
/// bounds the time this takes.
pub async fn read_header(tcp: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut head = [0u8; 16];
    let kind = loop {
        let n = tcp.peek(&mut head).await?;
        if n == 0 {
            return Err(ProxyHeaderError::Io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        match classify(&head[..n]) {
            Start::Unsure => tokio::time::sleep(Duration::from_millis(5)).await,
            k => break k,
        }
    };
    match kind {
        Start::Plain | Start::Unsure => Ok(None),
        Start::V1 => {
            // Byte by byte, so nothing after the header is consumed.
            let mut line = Vec::with_capacity(V1_MAX);
            while !line.ends_with(b"\r\n") {
                if line.len() >= V1_MAX {
                    return Err(ProxyHeaderError::Malformed);
                }
                line.push(tcp.read_u8().await?);
            }
            parse_v1(&line)
        }
        Start::V2 => {
            let mut buf = vec![0u8; 16];
            tcp.read_exact(&mut buf).await?;
            let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
            buf.resize(16 + len, 0);
            tcp.read_exact(&mut buf[16..]).await?;
            parse_v2(&buf)
        }
    }
}

fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    use ppp::v1::{Addresses, Header};
    let h = Header::try_from(line).map_err(|_| ProxyHeaderError::Malformed)?;
    Ok(match h.addresses {
        Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unknown => None,
    })
}

fn parse_v2(bytes: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    use ppp::v2::{Addresses, Command, Header};
    let h = Header::try_from(bytes).map_err(|_| ProxyHeaderError::Malformed)?;
    if h.command == Command::Local {
        return Ok(None);
    }
    Ok(match h.addresses {
        Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unix(_) | Addresses::Unspecified => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_tell_a_header_from_a_request() {
        assert_eq!(classify(b"PROXY TCP4"), Start::V1);
        assert_eq!(classify(b"PRO"), Start::Unsure);
        assert_eq!(classify(b"POST /api"), Start::Plain);
        assert_eq!(classify(b"PUT /x"), Start::Plain);
        assert_eq!(classify(b"GET / HTTP/1.1"), Start::Plain);
        assert_eq!(classify(&[0x16, 3, 1]), Start::Plain, "a TLS hello");
        assert_eq!(classify(V2_PREFIX), Start::V2);
        assert_eq!(classify(&V2_PREFIX[..5]), Start::Unsure);
        // A lone CRLF before a request (which HTTP allows) is not a header.
        assert_eq!(classify(b"\r\nGET /"), Start::Plain);
    }

    #[test]
    fn v1_headers_name_the_client() {
        assert_eq!(
            parse_v1(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n").unwrap(),
            Some("203.0.113.7:51234".parse().unwrap())
        );
        assert_eq!(
            parse_v1(b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n").unwrap(),
            Some("[2001:db8::7]:4711".parse().unwrap())
        );
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n").unwrap(), None);
        assert!(parse_v1(b"PROXY TCP4 nonsense\r\n").is_err());
    }

    #[test]
    fn v2_headers_name_the_client() {
        use ppp::v2::{Builder, Command, Protocol, Version};
        let src: SocketAddr = "198.51.100.4:6000".parse().unwrap();
        let dst: SocketAddr = "10.0.0.1:443".parse().unwrap();
        let bytes =
            Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, (src, dst))
                .build()
                .unwrap();
        assert_eq!(parse_v2(&bytes).unwrap(), Some(src));
        let local =
            Builder::with_addresses(Version::Two | Command::Local, Protocol::Stream, (src, dst))
                .build()
                .unwrap();
        assert_eq!(
            parse_v2(&local).unwrap(),
            None,
            "a health check of the proxy"
        );
        assert!(parse_v2(&bytes[..20]).is_err());
    }
}
