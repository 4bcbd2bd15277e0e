//! The relay against PROTOCOL.md §1–2, over real sockets, on SQLite and on
//! PostgreSQL.

mod common;

use std::time::Duration;

use common::{Backend, Ended, IV, WORDS, start, thread};
use hush_relay::{Limits, Rate, RateLimits};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    health_advertises_extensions,
    auth_issues_tokens_and_counts_failures,
    auth_block_and_rate_limit,
    the_block_is_per_client_behind_a_trusted_proxy_only,
    a_trusted_proxy_may_name_the_client_with_the_proxy_protocol,
    threads_are_idempotent_and_queryable,
    rest_messages_page_like_the_stock_server,
    ws_subscriptions_ping_and_stock_errors,
    ws_bad_tokens_close_with_4001,
    ws_invalid_utf8_closes_with_1007,
    ws_broadcasts_to_every_subscriber_and_acks_the_sender,
    ws_resend_with_same_client_id_is_stored_once,
    rest_post_is_broadcast_once,
    ws_limits_are_refused_with_error_frames,
    heartbeat_frames_arrive_on_interval,
    vault_and_messages_survive_a_restart,
    slow_subscriber_does_not_stall_others,
    a_burst_is_stored_in_order_with_its_duplicates_recognised,
    history_pages_are_larger_and_have_their_own_rate_limit,
    threads_are_listed_by_creation_and_announced_to_every_connection,
);

async fn health_advertises_extensions(b: Backend) {
    let r = start(b, |_| {}).await;
    let (s, v) = r.get("/health", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "healthy");
    let f: Vec<&str> = v["relay"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for want in hush_core::http::features::ALL {
        assert!(f.contains(want), "{want} missing from {f:?}");
    }
    // The message limit clients check against: 1 MiB, as stock clients send.
    assert_eq!(v["relay"]["max_ciphertext"], 1 << 20);
    // A 100 KB message of a stock web client is taken, by REST and WebSocket.
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let big = hush_core::b64::encode(&vec![7u8; 100_000]);
    let (s, v) = r
        .post(
            "/api/messages",
            Some(&t),
            json!({"thread_id": a, "ciphertext": big, "iv": IV}),
        )
        .await;
    assert_eq!(s, 201, "{}", v["detail"]);
    let mut ws = r.ws_query(&t).await;
    ws.send(json!({"type": "message", "thread_id": a, "ciphertext": big, "iv": IV, "client_message_id": "big"})).await;
    assert_eq!(ws.recv().await["type"], "message_sent");
    r.finish().await;
}

async fn auth_issues_tokens_and_counts_failures(b: Backend) {
    let r = start(b, |c| c.auth_max_failures = 3).await;
    // Words are normalised: odd case and whitespace still unlock.
    let messy = format!("  {}\n", WORDS.to_uppercase().replace(' ', "\t "));
    let (s, v) = r.post("/api/auth", None, json!({ "words": messy })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expires_in"], 3600);
    let salt = v["kdf_salt"].as_str().unwrap();
    assert_eq!(hush_core::b64::decode(salt).unwrap().len(), 32);
    let token = v["token"].as_str().unwrap().to_owned();

    let (s, v) = r.get("/api/auth/salt", None).await;
    assert_eq!((s, v["kdf_salt"].as_str().unwrap()), (200, salt));

    let wrong = "abandon abandon abandon abandon abandon abandon abandon abandon";
    let (s, v) = r.post("/api/auth", None, json!({ "words": wrong })).await;
    assert_eq!(s, 401);
    assert_eq!(
        v,
        json!({"detail": {"error": "invalid_credentials", "remaining_attempts": 2}})
    );
    // A success resets the count.
    assert_eq!(
        r.post("/api/auth", None, json!({ "words": WORDS })).await.0,
        200
    );
    let (_, v) = r.post("/api/auth", None, json!({ "words": wrong })).await;
    assert_eq!(v["detail"]["remaining_attempts"], 2);

    // Bad bodies are 422, never 500.
    for body in [
        json!({}),
        json!({"words": "short"}),
        json!({"words": 5}),
        json!([1]),
    ] {
        let (s, v) = r.post("/api/auth", None, body.clone()).await;
        assert_eq!(s, 422, "{body} → {v}");
        assert!(v["detail"].is_array());
    }
    let resp = r
        .http
        .post(r.url("/api/auth"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);

    // Refresh needs a valid token and gives a new one that works.
    let (s, v) = r.post("/api/auth/refresh", Some(&token), json!(null)).await;
    assert_eq!(s, 200, "{v}");
    let fresh = v["token"].as_str().unwrap();
    assert_eq!(
        r.post("/api/threads/query", Some(fresh), json!({"thread_ids": []}))
            .await
            .0,
        200
    );
    let (s, v) = r.post("/api/auth/refresh", Some("nope"), json!(null)).await;
    assert_eq!((s, v), (401, json!({"detail": "Invalid or expired token"})));
    let (s, v) = r.post("/api/auth/refresh", None, json!(null)).await;
    assert_eq!((s, v), (403, json!({"detail": "Not authenticated"})));
    // The scheme is case-insensitive, as on a stock server.
    let lower = r
        .http
        .post(r.url("/api/threads/query"))
        .header("authorization", format!("bearer {fresh}"))
        .json(&json!({"thread_ids": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status().as_u16(), 200);
    r.finish().await;
}

async fn the_block_is_per_client_behind_a_trusted_proxy_only(b: Backend) {
    let wrong = json!({ "words": "abandon abandon abandon abandon abandon abandon" });
    async fn auth(r: &common::TestRelay, xff: &str, body: &Value) -> u16 {
        r.http
            .post(r.url("/api/auth"))
            .header("x-forwarded-for", xff)
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
    // Behind a trusted proxy (the test's own address): one client's wrong
    // words block that client only.
    let r = start(b, |c| {
        c.auth_max_failures = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    assert_eq!(auth(&r, "203.0.113.1", &wrong).await, 401);
    assert_eq!(auth(&r, "203.0.113.1", &wrong).await, 401);
    assert_eq!(
        auth(&r, "203.0.113.1", &json!({ "words": WORDS })).await,
        403,
        "blocked"
    );
    assert_eq!(
        auth(&r, "203.0.113.2", &json!({ "words": WORDS })).await,
        200,
        "another client is not"
    );
    // A forged first entry does not help the blocked one.
    assert_eq!(
        auth(&r, "198.51.100.9, 203.0.113.1", &json!({ "words": WORDS })).await,
        403
    );
    r.finish().await;
    // Without --trusted-proxy the header means nothing: the address is the peer's.
    let r = start(b, |c| c.auth_max_failures = 2).await;
    assert_eq!(auth(&r, "203.0.113.1", &wrong).await, 401);
    assert_eq!(auth(&r, "203.0.113.2", &wrong).await, 401);
    assert_eq!(
        auth(&r, "203.0.113.3", &json!({ "words": WORDS })).await,
        403
    );
    r.finish().await;
}

/// `POST /api/auth` over a raw socket that starts with `preamble` (a PROXY
/// header, or nothing); the status, or 0 when the connection was dropped.
async fn raw_auth(r: &common::TestRelay, preamble: &[u8], body: &Value) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = r.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.to_string();
    let mut req = preamble.to_vec();
    req.extend_from_slice(
        format!(
            "POST /api/auth HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn a_trusted_proxy_may_name_the_client_with_the_proxy_protocol(b: Backend) {
    use ppp::v2::{Builder, Command, Protocol, Version};
    let wrong = json!({ "words": "abandon abandon abandon abandon abandon abandon" });
    let right = json!({ "words": WORDS });
    let v1 = |ip: &str| format!("PROXY TCP4 {ip} 127.0.0.1 40000 80\r\n").into_bytes();
    let v2 = |ip: &str| {
        let src: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
        let dst: std::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
        Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, (src, dst))
            .build()
            .unwrap()
    };
    let r = start(b, |c| {
        c.auth_max_failures = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    // One client's wrong words (v1 and v2 headers) block that client only.
    assert_eq!(raw_auth(&r, &v1("203.0.113.1"), &wrong).await, 401);
    assert_eq!(raw_auth(&r, &v2("203.0.113.1"), &wrong).await, 401);
    assert_eq!(
        raw_auth(&r, &v1("203.0.113.1"), &right).await,
        403,
        "blocked"
    );
    assert_eq!(raw_auth(&r, &v2("203.0.113.2"), &right).await, 200);
    // The proxy's own requests without a header still work, as the proxy.
    assert_eq!(raw_auth(&r, b"", &right).await, 200);
    // A broken header drops the connection.
    assert_eq!(raw_auth(&r, b"PROXY TCP4 nonsense\r\n", &right).await, 0);
    r.finish().await;
    // From a peer that is not trusted, a PROXY header is no header: the
    // request is malformed, and names nobody.
    let r = start(b, |c| c.auth_max_failures = 2).await;
    assert_eq!(raw_auth(&r, &v1("203.0.113.1"), &right).await, 400);
    assert_eq!(raw_auth(&r, &v1("203.0.113.1"), &wrong).await, 400);
    assert_eq!(raw_auth(&r, b"", &right).await, 200);
    r.finish().await;
}

async fn auth_block_and_rate_limit(b: Backend) {
    let r = start(b, |c| {
        c.auth_max_failures = 2;
        c.rate_limits = Some(RateLimits {
            http: Rate::new(60.0, 5.0),
            auth: Rate::new(60.0, 4.0),
            ws_messages: Rate::new(60.0, 5.0),
            history: Rate::new(60.0, 5.0),
        });
    })
    .await;
    let wrong = json!({ "words": "abandon abandon abandon abandon abandon abandon" });
    assert_eq!(r.post("/api/auth", None, wrong.clone()).await.0, 401);
    let (s, v) = r.post("/api/auth", None, wrong.clone()).await;
    assert_eq!((s, &v["detail"]["remaining_attempts"]), (401, &json!(0)));
    // Blocked now, even with the right words.
    let (s, v) = r.post("/api/auth", None, json!({ "words": WORDS })).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["detail"]["error"], "ip_blocked");
    assert!(v["detail"]["retry_after"].as_u64().unwrap() > 0);
    // The fourth request in the burst of 4 is still allowed, the fifth is 429.
    assert_eq!(r.post("/api/auth", None, wrong.clone()).await.0, 403);
    let resp = r
        .http
        .post(r.url("/api/auth"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited");

    // The general bucket is separate: 5 requests, then 429.
    for _ in 0..5 {
        assert_eq!(r.get("/api/auth/salt", None).await.0, 200);
    }
    assert_eq!(r.get("/api/auth/salt", None).await.0, 429);
    // /health is not rate limited.
    assert_eq!(r.get("/health", None).await.0, 200);
    r.finish().await;
}

async fn threads_are_idempotent_and_queryable(b: Backend) {
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let (a, bb, c) = (thread(1), thread(2), thread(3));
    let first = r.create_thread(&t, &a).await;
    assert_eq!(first["id"], a);
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    // Creating again returns the stored row, still 201.
    let (s, again) = r
        .post(
            "/api/threads",
            Some(&t),
            json!({"id": a, "ciphertext": "b3RoZXI=", "iv": IV}),
        )
        .await;
    assert_eq!((s, &again), (201, &first));
    r.create_thread(&t, &bb).await;

    let (s, v) = r
        .post(
            "/api/threads/query",
            Some(&t),
            json!({"thread_ids": [a, bb, c]}),
        )
        .await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [bb.as_str(), a.as_str()],
        "newest first, unknown omitted"
    );
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    assert_eq!(
        r.post("/api/threads/query", Some(&t), json!({"thread_ids": many}))
            .await
            .0,
        422
    );

    let (s, v) = r
        .post(
            "/api/threads",
            Some(&t),
            json!({"id": c, "ciphertext": "@@@", "iv": IV}),
        )
        .await;
    assert_eq!((s, v), (400, json!({"detail": "Invalid base64 encoding"})));
    let (s, _) = r
        .post(
            "/api/threads",
            Some(&t),
            json!({"id": "nope", "ciphertext": "AAAA", "iv": IV}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(r.post("/api/threads", None, json!({})).await.0, 403);

    assert_eq!(r.get(&format!("/api/threads/{a}"), Some(&t)).await.1, first);
    let (s, v) = r.get(&format!("/api/threads/{c}"), Some(&t)).await;
    assert_eq!((s, v), (404, json!({"detail": "Thread not found"})));
    assert_eq!(r.get("/api/threads/not-a-uuid", Some(&t)).await.0, 422);

    // Deleting a thread deletes its messages.
    let (s, _) = r
        .post(
            "/api/messages",
            Some(&t),
            json!({"thread_id": a, "ciphertext": "AAAA", "iv": IV}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = r.delete(&format!("/api/threads/{a}"), Some(&t)).await;
    assert_eq!((s, v), (200, json!({"status": "deleted"})));
    assert_eq!(r.get(&format!("/api/messages/{a}"), Some(&t)).await.0, 404);
    assert_eq!(
        r.get(&format!("/api/messages/{a}/count"), Some(&t)).await.1["count"],
        0
    );
    assert_eq!(
        r.delete(&format!("/api/threads/{a}"), Some(&t)).await.0,
        404
    );
    r.finish().await;
}

async fn rest_messages_page_like_the_stock_server(b: Backend) {
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let a = thread(1);
    let (s, v) = r.get(&format!("/api/messages/{a}"), Some(&t)).await;
    assert_eq!((s, v), (404, json!({"detail": "Thread not found"})));
    r.create_thread(&t, &a).await;
    let mut posted = Vec::new();
    for i in 0..7 {
        let ct = hush_core::b64::encode(format!("m{i}").as_bytes());
        let (s, v) = r
            .post(
                "/api/messages",
                Some(&t),
                json!({"thread_id": a, "ciphertext": ct, "iv": IV}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["thread_id"], a);
        assert!(v.get("client_message_id").is_none());
        posted.push(v);
    }
    // created_at strictly increases, written the REST way.
    let times: Vec<i64> = posted
        .iter()
        .map(|m| hush_core::time::parse_iso_micros(m["created_at"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(posted[0]["created_at"].as_str().unwrap().ends_with('Z'));

    let list = |q: String| {
        let r = &r;
        let t = t.clone();
        let a = a.clone();
        async move {
            let (s, v) = r.get(&format!("/api/messages/{a}{q}"), Some(&t)).await;
            assert_eq!(s, 200, "{v}");
            v.as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].clone())
                .collect::<Vec<_>>()
        }
    };
    let ids: Vec<Value> = posted.iter().map(|m| m["id"].clone()).collect();
    // Without `after`: the newest `limit`, oldest first.
    assert_eq!(list("?limit=3".into()).await, ids[4..7]);
    assert_eq!(list(String::new()).await, ids);
    // With `after`: the oldest `limit` newer than it, using the server's string.
    let after = urlencode(posted[1]["created_at"].as_str().unwrap());
    assert_eq!(list(format!("?after={after}&limit=2")).await, ids[2..4]);
    // The WebSocket spelling of the same instant works as a cursor too.
    let ws_style = hush_core::time::format_ws(times[1]);
    assert_eq!(
        list(format!("?after={}&limit=2", urlencode(&ws_style))).await,
        ids[2..4]
    );
    assert_eq!(
        list(format!(
            "?after={}",
            urlencode(posted[6]["created_at"].as_str().unwrap())
        ))
        .await,
        Vec::<Value>::new()
    );

    // [ext] Pages up to the advertised `max_page`.
    assert_eq!(list("?limit=1000".into()).await, ids);
    for bad in ["?limit=1001", "?limit=0", "?limit=x", "?after=yesterday"] {
        assert_eq!(
            r.get(&format!("/api/messages/{a}{bad}"), Some(&t)).await.0,
            422,
            "{bad}"
        );
    }
    let (s, v) = r.get(&format!("/api/messages/{a}/count"), Some(&t)).await;
    assert_eq!((s, v), (200, json!({"thread_id": a, "count": 7})));

    let id = posted[0]["id"].as_str().unwrap();
    assert_eq!(
        r.delete(&format!("/api/messages/{id}"), Some(&t)).await,
        (200, json!({"status": "deleted"}))
    );
    assert_eq!(
        r.delete(&format!("/api/messages/{id}"), Some(&t)).await.0,
        404
    );
    assert_eq!(
        r.get(&format!("/api/messages/{a}/count"), Some(&t)).await.1["count"],
        6
    );

    let (s, v) = r
        .post(
            "/api/messages",
            Some(&t),
            json!({"thread_id": thread(9), "ciphertext": "AAAA", "iv": IV}),
        )
        .await;
    assert_eq!((s, v), (404, json!({"detail": "Thread not found"})));
    let (s, v) = r
        .post(
            "/api/messages",
            Some(&t),
            json!({"thread_id": a, "ciphertext": "A-A_", "iv": IV}),
        )
        .await;
    assert_eq!((s, v), (400, json!({"detail": "Invalid base64 encoding"})));
    assert_eq!(
        r.get(&format!("/api/messages/{a}"), Some("bad")).await.0,
        401
    );
    r.finish().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn ws_subscriptions_ping_and_stock_errors(b: Backend) {
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let mut ws = r.ws_query(&t).await;
    let a = thread(1);
    ws.subscribe(&a).await;
    ws.subscribe(&a).await; // idempotent
    ws.send(json!({"type": "unsubscribe", "thread_id": a}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"type": "unsubscribed", "thread_id": a})
    );
    ws.send(json!({"type": "unsubscribe", "thread_id": a}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"type": "unsubscribed", "thread_id": a})
    );
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}));

    let cases = [
        (
            json!({"type": "subscribe"}),
            "Missing thread_id",
            "invalid_request",
        ),
        (
            json!({"type": "subscribe", "thread_id": "nope"}),
            "Invalid thread_id format",
            "invalid_thread_id",
        ),
        (
            json!({"type": "message", "thread_id": a}),
            "Missing required fields: thread_id, ciphertext, iv",
            "invalid_request",
        ),
        (
            json!({"type": "message", "thread_id": a, "ciphertext": "@@", "iv": IV}),
            "Invalid base64 encoding",
            "invalid_payload",
        ),
        (
            json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV}),
            "Thread not found",
            "thread_not_found",
        ),
        (
            json!({"type": "bogus"}),
            "Unknown message type: bogus",
            "unknown_type",
        ),
    ];
    for (frame, message, code) in cases {
        ws.send(frame.clone()).await;
        let v = ws.recv().await;
        assert_eq!(v["type"], "error", "{frame}");
        assert_eq!(v["message"], message, "{frame}");
        assert_eq!(v["code"], code, "{frame}");
    }
    // Malformed input gets an error frame and the socket keeps serving.
    for raw in [
        Message::text("not json"),
        Message::text("[1,2]"),
        Message::binary(vec![0u8, 1]),
    ] {
        ws.send_raw(raw).await;
        let v = ws.recv().await;
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("error"), Some("invalid_request"))
        );
    }
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}));
    r.finish().await;
}

async fn ws_invalid_utf8_closes_with_1007(b: Backend) {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let mut ws = r.ws_query(&t).await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    ws.send_raw(Message::Frame(bad)).await;
    assert_eq!(
        ws.ended().await,
        Ended::Close(1007, "Invalid UTF-8 in a text frame".into())
    );
    r.finish().await;
}

async fn ws_bad_tokens_close_with_4001(b: Backend) {
    let r = start(b, |_| {}).await;
    for url in [format!("{}?token=not-a-jwt", r.ws), r.ws.clone()] {
        let mut ws = common::Ws::connect(&url, None).await;
        assert_eq!(ws.ended().await, Ended::Close(4001, "Invalid token".into()));
    }
    let mut ws = common::Ws::connect(&r.ws, Some("forged.token.here")).await;
    assert_eq!(ws.ended().await, Ended::Close(4001, "Invalid token".into()));
    // An expired token is refused the same way.
    let r2 = start(b, |c| c.token_ttl = Duration::from_secs(1)).await;
    let t = r2.token().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut ws = r2.ws_bearer(&t).await;
    assert_eq!(ws.ended().await, Ended::Close(4001, "Invalid token".into()));
    let stats = r.relay().stats();
    assert_eq!(hush_relay::Stats::get(&stats.ws_auth_failures), 3);
    r.finish().await;
    r2.finish().await;
}

async fn ws_broadcasts_to_every_subscriber_and_acks_the_sender(b: Backend) {
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let mut alice = r.ws_bearer(&t).await;
    let mut bob = r.ws_query(&t).await;
    let mut carol = r.ws_query(&t).await; // not subscribed
    alice.subscribe(&a).await;
    bob.subscribe(&a).await;

    // Stock frame: no ack but the echo, to every subscriber, the sender included.
    alice
        .send(json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV}))
        .await;
    let echo = alice.recv().await;
    assert_eq!(echo["type"], "message");
    assert_eq!(
        (echo["ciphertext"].as_str(), echo["iv"].as_str()),
        (Some("AAAA"), Some(IV))
    );
    assert!(echo["created_at"].as_str().unwrap().ends_with("+00:00"));
    assert!(echo.get("client_message_id").is_none());
    assert_eq!(bob.recv().await, echo);

    // [ext] with a client id: message_sent to the sender, subscribed or not.
    carol
        .send(json!({"type": "message", "thread_id": a, "ciphertext": "BBBB", "iv": IV, "client_message_id": "c-1"}))
        .await;
    let ack = carol.recv().await;
    assert_eq!(ack["type"], "message_sent");
    assert_eq!(ack["client_message_id"], "c-1");
    assert_eq!(ack["thread_id"], a);
    for ws in [&mut alice, &mut bob] {
        let m = ws.recv().await;
        assert_eq!(
            (m["id"].clone(), m["client_message_id"].clone()),
            (ack["id"].clone(), json!("c-1"))
        );
        assert_eq!(m["created_at"], ack["created_at"]);
    }
    assert!(
        carol
            .recv_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    r.finish().await;
}

async fn ws_resend_with_same_client_id_is_stored_once(b: Backend) {
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let mut alice = r.ws_query(&t).await;
    let mut bob = r.ws_query(&t).await;
    bob.subscribe(&a).await;
    let frame = json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": "same"});
    alice.send(frame.clone()).await;
    let first = alice.recv().await;
    assert_eq!(bob.recv().await["id"], first["id"]);
    // The ack was "lost"; the client resends on a new connection.
    let mut alice2 = r.ws_query(&t).await;
    alice2.send(frame.clone()).await;
    let second = alice2.recv().await;
    assert_eq!(second, first, "the original id and time come back");
    assert!(
        bob.recv_within(Duration::from_millis(300)).await.is_none(),
        "not broadcast again"
    );
    // Over REST too.
    let (s, v) = r
        .post(
            "/api/messages",
            Some(&t),
            json!({"thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": "same"}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(v["id"], first["id"]);
    assert_eq!(
        r.get(&format!("/api/messages/{a}/count"), Some(&t)).await.1["count"],
        1
    );
    // The same client id in another thread is another message.
    let other = thread(2);
    r.create_thread(&t, &other).await;
    alice.send(json!({"type": "message", "thread_id": other, "ciphertext": "AAAA", "iv": IV, "client_message_id": "same"})).await;
    assert_ne!(alice.recv().await["id"], first["id"]);
    let stats = r.relay().stats();
    assert_eq!(hush_relay::Stats::get(&stats.duplicate_sends), 2);
    r.finish().await;
}

async fn rest_post_is_broadcast_once(b: Backend) {
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let mut bob = r.ws_query(&t).await;
    bob.subscribe(&a).await;
    let (s, v) = r
        .post(
            "/api/messages",
            Some(&t),
            json!({"thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": "r1"}),
        )
        .await;
    assert_eq!(s, 201);
    let m = bob.recv().await;
    assert_eq!((m["type"].as_str(), &m["id"]), (Some("message"), &v["id"]));
    assert!(bob.recv_within(Duration::from_millis(300)).await.is_none());
    r.finish().await;
}

async fn ws_limits_are_refused_with_error_frames(b: Backend) {
    let r = start(b, |c| {
        c.limits = Limits {
            max_ciphertext: 1024,
            max_frame: 4096,
            max_subscriptions: 2,
            ..Limits::default()
        };
        c.rate_limits = Some(RateLimits {
            ws_messages: Rate::new(6.0, 3.0),
            ..RateLimits::default()
        });
    })
    .await;
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let mut ws = r.ws_query(&t).await;
    ws.subscribe(&thread(1)).await;
    ws.subscribe(&thread(2)).await;
    ws.send(json!({"type": "subscribe", "thread_id": thread(3)}))
        .await;
    let v = ws.recv().await;
    assert_eq!(
        (v["code"].as_str(), v["thread_id"].as_str()),
        (Some("subscription_limit"), Some(thread(3).as_str()))
    );

    let big = hush_core::b64::encode(&[0u8; 1025]);
    ws.send(json!({"type": "message", "thread_id": a, "ciphertext": big, "iv": IV, "client_message_id": "big"})).await;
    let v = ws.recv().await;
    assert_eq!(
        (v["code"].as_str(), v["client_message_id"].as_str()),
        (Some("payload_too_large"), Some("big"))
    );
    ws.send(json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": "AAAA", "client_message_id": "iv"})).await;
    assert_eq!(ws.recv().await["code"], "invalid_payload");
    let frame = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(5000));
    ws.send_raw(Message::text(frame)).await;
    assert_eq!(ws.recv().await["code"], "payload_too_large");
    // Three messages pass the burst of 3 (two were spent above), then rate_limited (a token
    // comes back every 10 s, so a slow database or a loaded machine does not refill one).
    ws.send(json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": "ok"})).await;
    // Subscribed: the echo and the acknowledgement both come. One node sends the echo first;
    // on PostgreSQL the echo comes back through the database's notice, so either order is right.
    let mut two =
        [ws.recv().await, ws.recv().await].map(|v| v["type"].as_str().unwrap_or("").to_owned());
    two.sort();
    assert_eq!(two, ["message", "message_sent"]);
    ws.send(json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": "slow"})).await;
    let v = ws.recv().await;
    assert_eq!(
        (v["code"].as_str(), v["client_message_id"].as_str()),
        (Some("rate_limited"), Some("slow"))
    );
    // Still serving.
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}));
    r.finish().await;
}

async fn heartbeat_frames_arrive_on_interval(b: Backend) {
    let r = start(b, |c| c.heartbeat = Duration::from_millis(300)).await;
    let t = r.token().await;
    let mut ws = r.ws_query(&t).await;
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let v = ws.recv_any(Duration::from_secs(2)).await.unwrap();
        assert_eq!(v, json!({"type": "heartbeat"}));
    }
    assert!(started.elapsed() >= Duration::from_millis(850));
    r.finish().await;
}

async fn vault_and_messages_survive_a_restart(b: Backend) {
    let mut r = start(b, |_| {}).await;
    let t = r.token().await;
    let salt = r.relay().kdf_salt().to_owned();
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let (_, m) = r
        .post(
            "/api/messages",
            Some(&t),
            json!({"thread_id": a, "ciphertext": "AAAA", "iv": IV}),
        )
        .await;
    // Restart with other words configured: the stored vault wins.
    r.config.words = Some(zeroize::Zeroizing::new(
        "other words entirely that do not matter here".into(),
    ));
    r.restart().await;
    assert!(r.relay().new_words.is_none());
    assert_eq!(r.relay().kdf_salt(), salt);
    // The old token is still valid (same JWT secret), the words still unlock.
    let (s, v) = r.get(&format!("/api/messages/{a}"), Some(&t)).await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["id"], m["id"]);
    let t2 = r.token().await;
    let (_, m2) = r
        .post(
            "/api/messages",
            Some(&t2),
            json!({"thread_id": a, "ciphertext": "AAAA", "iv": IV}),
        )
        .await;
    let (t1, t2) = (
        hush_core::time::parse_iso_micros(m["created_at"].as_str().unwrap()).unwrap(),
        hush_core::time::parse_iso_micros(m2["created_at"].as_str().unwrap()).unwrap(),
    );
    assert!(t2 > t1);
    r.finish().await;
}

async fn slow_subscriber_does_not_stall_others(b: Backend) {
    let r = start(b, |c| c.queue_len = 64).await;
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let mut sender = r.ws_query(&t).await;
    let mut fast = r.ws_query(&t).await;
    let mut slow = r.ws_query(&t).await;
    fast.subscribe(&a).await;
    slow.subscribe(&a).await;
    // `slow` never reads again. 16 KiB messages fill its socket buffers and queue.
    let ct = hush_core::b64::encode(&vec![7u8; 16 * 1024]);
    let n = 600;
    let fast_reader = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            let v = fast
                .recv_within(Duration::from_secs(20))
                .await
                .expect("fast subscriber starved");
            if v["type"] == "message" {
                got += 1;
            }
        }
        got
    });
    let started = std::time::Instant::now();
    for i in 0..n {
        sender
            .send(json!({"type": "message", "thread_id": a, "ciphertext": ct, "iv": IV, "client_message_id": format!("m{i}")}))
            .await;
    }
    for _ in 0..n {
        assert_eq!(
            sender.recv_within(Duration::from_secs(20)).await.unwrap()["type"],
            "message_sent"
        );
    }
    assert_eq!(fast_reader.await.unwrap(), n);
    assert!(started.elapsed() < Duration::from_secs(30));
    let stats = r.relay().stats();
    assert!(
        hush_relay::Stats::get(&stats.slow_closed) >= 1,
        "the slow subscriber was cut off"
    );
    drop(slow);
    r.finish().await;
}

async fn a_burst_is_stored_in_order_with_its_duplicates_recognised(b: Backend) {
    use futures_util::SinkExt;
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    let mut alice = r.ws_query(&t).await;
    let mut bob = r.ws_query(&t).await;
    bob.subscribe(&a).await;
    // One stored before the burst.
    alice.send(json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": "old"})).await;
    let old = alice.recv().await;
    assert_eq!(bob.recv().await["id"], old["id"]);
    // 300 frames in one write: sends, a resend of "old", a repeat inside the
    // burst, a refusal and a ping in the middle.
    let mut frames = Vec::new();
    for i in 0..300 {
        let f = match i {
            100 => {
                json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": "old"})
            }
            150 => {
                json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": "m10"})
            }
            200 => {
                json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": "short", "client_message_id": "bad"})
            }
            250 => json!({"type": "ping"}),
            _ => {
                json!({"type": "message", "thread_id": a, "ciphertext": "AAAA", "iv": IV, "client_message_id": format!("m{i}")})
            }
        };
        frames.push(f);
    }
    for f in &frames {
        alice.s.feed(Message::text(f.to_string())).await.unwrap();
    }
    alice.s.flush().await.unwrap();
    // The replies come in the order of the frames they answer.
    let mut acked = std::collections::HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        let v = alice.recv().await;
        match i {
            200 => assert_eq!(v["code"], "invalid_payload", "{v}"),
            250 => assert_eq!(v, json!({"type": "pong"})),
            _ => {
                assert_eq!(v["type"], "message_sent", "{i}: {v}");
                assert_eq!(v["client_message_id"], f["client_message_id"], "{i}");
                let cmid = v["client_message_id"].as_str().unwrap().to_owned();
                if let Some(prev) = acked.insert(cmid.clone(), v["id"].clone()) {
                    assert_eq!(prev, v["id"], "{cmid} acked with two ids");
                }
            }
        }
    }
    assert_eq!(acked["old"], old["id"]);
    // Bob got each new message once, in the order sent.
    let mut seen = Vec::new();
    while let Some(v) = bob.recv_within(Duration::from_millis(500)).await {
        if v["type"] == "message" {
            seen.push(v["id"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..300)
        .filter(|i| ![100, 150, 200, 250].contains(i))
        .map(|i| acked[&format!("m{i}")].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(
        r.get(&format!("/api/messages/{a}/count"), Some(&t)).await.1["count"],
        297
    );
    let stats = r.relay().stats();
    assert_eq!(hush_relay::Stats::get(&stats.duplicate_sends), 2);
    r.finish().await;
}

/// [ext] History pages of up to 1000 (advertised), read from a bucket of
/// their own: a client catching up does not spend the other routes' budget,
/// nor they its. A stock relay keeps 200 and one bucket for everything.
async fn history_pages_are_larger_and_have_their_own_rate_limit(b: Backend) {
    let limits = RateLimits {
        http: Rate::new(60.0, 6.0),
        history: Rate::new(60.0, 12.0),
        ..RateLimits::default()
    };
    let r = start(b, |c| c.rate_limits = Some(limits)).await;
    let (_, v) = r.get("/health", None).await;
    assert_eq!(v["relay"]["max_page"], 1000);
    let t = r.token().await;
    let a = thread(1);
    r.create_thread(&t, &a).await;
    for i in 0..12 {
        let (s, v) = r
            .get(&format!("/api/messages/{a}?limit=1000"), Some(&t))
            .await;
        assert_eq!(s, 200, "history read {i}: {v}");
    }
    let (s, _) = r
        .get(&format!("/api/messages/{a}?limit=1000"), Some(&t))
        .await;
    assert_eq!(s, 429, "the history bucket is spent");
    // The other routes still have theirs.
    let (s, v) = r
        .post("/api/threads/query", Some(&t), json!({ "thread_ids": [a] }))
        .await;
    assert_eq!(s, 200, "{v}");
    r.finish().await;

    let r = start(b, |c| {
        c.stock = true;
        c.rate_limits = Some(limits);
    })
    .await;
    let t = r.token().await;
    r.create_thread(&t, &a).await;
    let (s, _) = r
        .get(&format!("/api/messages/{a}?limit=201"), Some(&t))
        .await;
    assert_eq!(s, 422, "a stock server serves pages of 200 at most");
    let mut ok = 2; // the thread's creation and the refused read
    while r.get(&format!("/api/messages/{a}"), Some(&t)).await.0 == 200 {
        ok += 1;
        assert!(ok <= 6, "history reads are not counted with the rest");
    }
    assert_eq!(ok, 6, "every route shares one bucket of 6");
    r.finish().await;
}

/// [ext] `GET /api/threads?after=&limit=` pages through threads in creation
/// order, and every connection (subscribed to anything or not) hears of a
/// new thread once, with its row. A stock relay has neither.
async fn threads_are_listed_by_creation_and_announced_to_every_connection(b: Backend) {
    let r = start(b, |_| {}).await;
    let t = r.token().await;
    let mut watcher = r.ws_query(&t).await;
    let mut other = r.ws_bearer(&t).await;
    let mut made = Vec::new();
    for n in [5, 1, 9, 3] {
        made.push(r.create_thread(&t, &thread(n)).await);
    }
    for ws in [&mut watcher, &mut other] {
        for row in &made {
            let f = ws.recv().await;
            assert_eq!(f["type"], "thread_created", "{f}");
            for k in ["id", "ciphertext", "iv", "created_at"] {
                assert_eq!(f[k], row[k], "{k} of {f}");
            }
        }
    }
    // Creating an existing thread again announces nothing.
    r.create_thread(&t, &thread(5)).await;
    assert_eq!(watcher.recv_within(Duration::from_millis(300)).await, None);

    // In creation order, paged by the last row's `created_at`.
    let (s, v) = r.get("/api/threads?limit=3", Some(&t)).await;
    assert_eq!(s, 200, "{v}");
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&v), [thread(5), thread(1), thread(9)]);
    let after = v[2]["created_at"].as_str().unwrap();
    let (s, v) = r
        .get(
            &format!("/api/threads?after={}&limit=3", urlencode(after)),
            Some(&t),
        )
        .await;
    assert_eq!((s, ids(&v)), (200, vec![thread(3)]));
    assert_eq!(v[0], made[3]);
    let last = v[0]["created_at"].as_str().unwrap();
    let (_, v) = r
        .get(&format!("/api/threads?after={}", urlencode(last)), Some(&t))
        .await;
    assert_eq!(v, json!([]));
    // Bad queries are 422; no token is 403 (as on every route).
    for q in ["limit=0", "limit=1001", "limit=x", "after=yesterday"] {
        let (s, v) = r.get(&format!("/api/threads?{q}"), Some(&t)).await;
        assert_eq!(s, 422, "{q}: {v}");
    }
    assert_eq!(r.get("/api/threads", None).await.0, 403);
    // A deleted thread is no longer listed.
    r.delete(&format!("/api/threads/{}", thread(1)), Some(&t))
        .await;
    let (_, v) = r.get("/api/threads", Some(&t)).await;
    assert_eq!(ids(&v), [thread(5), thread(9), thread(3)]);
    r.finish().await;

    let r = start(b, |c| c.stock = true).await;
    let t = r.token().await;
    let mut ws = r.ws_query(&t).await;
    r.create_thread(&t, &thread(2)).await;
    assert_eq!(ws.recv_within(Duration::from_millis(300)).await, None);
    assert_eq!(r.get("/api/threads", Some(&t)).await.0, 405);
    r.finish().await;
}
