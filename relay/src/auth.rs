//! The vault secret, JWTs (HS256) and the brute-force defence of `/api/auth`.
//!
//! The server never learns the words: it keeps `base64(SHA-256(normalized))`,
//! a random KDF salt and a random JWT secret. Tokens name nobody; they only
//! prove the holder knew the words within the last `token_ttl`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// What the relay stores of the vault.
#[derive(Clone)]
pub struct VaultSecret {
    pub auth_hash: String,
    pub kdf_salt: String,
    pub jwt_secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for VaultSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultSecret(<redacted>)")
    }
}

/// Fills a buffer from the OS random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the OS random source is available");
    b
}

/// Twelve fresh BIP-39 English words (a valid 128-bit mnemonic).
pub fn generate_words() -> Zeroizing<String> {
    let entropy = Zeroizing::new(random_bytes::<16>());
    let m = bip39::Mnemonic::from_entropy(entropy.as_ref()).expect("16 bytes is valid entropy");
    Zeroizing::new(m.to_string())
}

impl VaultSecret {
    /// A new vault for these words.
    pub fn create(words: &str) -> Self {
        VaultSecret {
            auth_hash: hush_core::crypto::auth_hash(words),
            kdf_salt: hush_core::b64::encode(&random_bytes::<32>()),
            jwt_secret: Zeroizing::new(random_bytes::<32>().to_vec()),
        }
    }

    pub fn check_words(&self, words: &str) -> bool {
        let h = hush_core::crypto::auth_hash(words);
        bool::from(h.as_bytes().ct_eq(self.auth_hash.as_bytes()))
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    exp: u64,
    iat: u64,
    #[serde(rename = "type")]
    kind: String,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    Signature,
    #[error("expired token")]
    Expired,
    /// Issued for longer than this relay's token lifetime, or in the future.
    #[error("token lifetime exceeds the configured one")]
    Lifetime,
}

/// The token of an `Authorization: Bearer TOKEN` header. The scheme is
/// case-insensitive (RFC 9110 §11.1), as a stock server takes it.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Issues and checks HS256 access tokens.
pub struct Tokens {
    secret: Zeroizing<Vec<u8>>,
    pub ttl: Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Tokens {
            secret: Zeroizing::new(secret.to_vec()),
            ttl,
        }
    }

    pub fn issue(&self) -> String {
        let iat = unix_now();
        let claims = Claims {
            exp: iat + self.ttl.as_secs(),
            iat,
            kind: "access".into(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .expect("HS256 signs any claims")
    }

    pub fn verify(&self, token: &str) -> Result<(), TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        // HS256 only (`alg: none` and every other algorithm are refused),
        // `exp` required and checked without leeway.
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp"]);
        let claims =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&self.secret), &v)
                .map_err(|e| match e.kind() {
                    ErrorKind::InvalidSignature => TokenError::Signature,
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Malformed,
                })?
                .claims;
        if claims.kind != "access" {
            return Err(TokenError::Malformed);
        }
        if claims.exp <= unix_now() {
            return Err(TokenError::Expired);
        }
        // A token good for ten years is a stolen key's best friend: only
        // what this relay would issue itself is taken (a minute of slack for
        // clocks).
        let now = unix_now();
        if claims.iat > now + 60 || claims.exp.saturating_sub(claims.iat) > self.ttl.as_secs() + 60
        {
            return Err(TokenError::Lifetime);
        }
        Ok(())
    }
}

/// Failed `/api/auth` attempts per client address, and temporary blocks;
/// plus a budget of failures from all addresses together, which a guesser
/// rotating addresses runs into: past it, every address waits for the rest
/// of the minute (with 128-bit words guessing is hopeless anyway; the
/// budget caps the work and the memory). Entries are pruned.
pub struct AuthGuard {
    pub max_failures: u32,
    pub block_for: Duration,
    /// Failures per minute from all addresses before all wait.
    pub global_per_minute: u32,
    state: Mutex<GuardState>,
}

#[derive(Default)]
struct GuardState {
    per_ip: HashMap<IpAddr, Failures>,
    /// The current minute's start and its failures, all addresses.
    window: Option<(Instant, u32)>,
}

struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// Entries kept before old ones are pruned.
const PRUNE_ABOVE: usize = 4096;

/// The outcome of asking whether an address may try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Blocked { retry_after: Duration },
}

impl AuthGuard {
    pub fn new(max_failures: u32, block_for: Duration) -> Self {
        AuthGuard {
            max_failures: max_failures.max(1),
            block_for,
            global_per_minute: (max_failures.max(1) * 20).max(100),
            state: Mutex::new(GuardState::default()),
        }
    }

    pub fn gate(&self, ip: IpAddr) -> Gate {
        let mut g = self.state.lock().expect("auth guard lock");
        if let Some((start, n)) = g.window {
            let left = Duration::from_secs(60).saturating_sub(start.elapsed());
            if left.is_zero() {
                g.window = None;
            } else if n >= self.global_per_minute {
                return Gate::Blocked { retry_after: left };
            }
        }
        let st = &mut g.per_ip;
        if let Some(f) = st.get_mut(&ip)
            && let Some(until) = f.blocked_until
        {
            let now = Instant::now();
            if until > now {
                return Gate::Blocked {
                    retry_after: until - now,
                };
            }
            // The block has run out: a fresh start.
            st.remove(&ip);
        }
        Gate::Open
    }

    /// Records a failure; returns the attempts left (0 means now blocked).
    pub fn fail(&self, ip: IpAddr) -> u32 {
        let mut g = self.state.lock().expect("auth guard lock");
        let now = Instant::now();
        match &mut g.window {
            Some((start, n)) if start.elapsed() < Duration::from_secs(60) => *n += 1,
            w => *w = Some((now, 1)),
        }
        if g.per_ip.len() >= PRUNE_ABOVE {
            let block_for = self.block_for;
            g.per_ip.retain(|_, f| {
                f.blocked_until.is_some_and(|u| u > now) || now - f.last < block_for
            });
        }
        let f = g.per_ip.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
        });
        f.last = now;
        f.count += 1;
        if f.count >= self.max_failures {
            f.blocked_until = Some(Instant::now() + self.block_for);
            0
        } else {
            self.max_failures - f.count
        }
    }

    pub fn succeed(&self, ip: IpAddr) {
        self.state
            .lock()
            .expect("auth guard lock")
            .per_ip
            .remove(&ip);
    }

    /// Addresses with failures on record (pruning keeps this bounded).
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.state.lock().expect("auth guard lock").per_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for h in ["Bearer abc", "bearer abc", "BEARER  abc ", " Bearer abc"] {
            assert_eq!(bearer_token(h), Some("abc"), "{h:?}");
        }
        for h in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer_token(h), None, "{h:?}");
        }
    }

    #[test]
    fn tokens_verify_and_expire() {
        let t = Tokens::new(b"secret", Duration::from_secs(3600));
        let tok = t.issue();
        assert_eq!(t.verify(&tok), Ok(()));
        let other = Tokens::new(b"other", Duration::from_secs(3600));
        assert_eq!(other.verify(&tok), Err(TokenError::Signature));
        let zero = Tokens::new(b"secret", Duration::ZERO);
        assert_eq!(zero.verify(&zero.issue()), Err(TokenError::Expired));
        // Signed with the right key, but for ten years: refused.
        let decade = Tokens::new(b"secret", Duration::from_secs(10 * 365 * 86_400));
        assert_eq!(t.verify(&decade.issue()), Err(TokenError::Lifetime));
        for bad in ["", "a", "a.b", "a.b.c", "...", "not-a-jwt"] {
            assert!(t.verify(bad).is_err(), "{bad:?}");
        }
        // Tampering with the claims breaks the signature.
        let mut parts: Vec<&str> = tok.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"exp":99999999999,"iat":0,"type":"access"}"#);
        parts[1] = &forged;
        assert_eq!(t.verify(&parts.join(".")), Err(TokenError::Signature));
        // `alg: none`, and another algorithm, are refused whatever they claim.
        let claims = URL_SAFE_NO_PAD.encode(br#"{"exp":99999999999,"iat":0,"type":"access"}"#);
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
        ] {
            let h = URL_SAFE_NO_PAD.encode(header);
            assert!(t.verify(&format!("{h}.{claims}.")).is_err(), "{header}");
            assert!(t.verify(&format!("{h}.{claims}")).is_err(), "{header}");
        }
        // A token without `exp` is refused too.
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"iat": unix_now(), "type": "access"}),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(t.verify(&no_exp), Err(TokenError::Malformed));
    }

    #[test]
    fn rotating_addresses_meet_the_global_budget_and_the_map_is_pruned() {
        let mut g = AuthGuard::new(5, Duration::ZERO);
        g.global_per_minute = 10;
        for i in 0..10u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(g.gate(ip), Gate::Open);
            g.fail(ip);
        }
        let fresh: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(
            matches!(g.gate(fresh), Gate::Blocked { retry_after } if retry_after <= Duration::from_secs(60)),
            "the eleventh address waits"
        );
        // With blocks of zero length, old entries go once the map is large.
        let mut g = AuthGuard::new(5, Duration::ZERO);
        g.global_per_minute = u32::MAX;
        for i in 0..(PRUNE_ABOVE as u32 * 3) {
            g.fail(IpAddr::from(std::net::Ipv4Addr::from(i)));
        }
        assert!(g.tracked() <= PRUNE_ABOVE + 1, "{} tracked", g.tracked());
    }

    #[test]
    fn guard_blocks_after_the_limit_and_resets_on_success() {
        let g = AuthGuard::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(g.fail(ip), 2);
        g.succeed(ip);
        assert_eq!(g.fail(ip), 2);
        assert_eq!(g.fail(ip), 1);
        assert_eq!(g.fail(ip), 0);
        assert!(matches!(g.gate(ip), Gate::Blocked { .. }));
        assert_eq!(g.gate("10.0.0.2".parse().unwrap()), Gate::Open);
    }

    #[test]
    fn generated_words_are_twelve_bip39_words() {
        let w = generate_words();
        assert_eq!(w.split(' ').count(), 12);
        assert!(bip39::Mnemonic::parse_in(bip39::Language::English, w.as_str()).is_ok());
        let v = VaultSecret::create(&w);
        assert!(v.check_words(&w.to_uppercase()));
        assert!(!v.check_words("abandon"));
    }
}
