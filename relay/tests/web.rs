//! The web client's files as a browser gets them: precompressed by
//! `Accept-Encoding`, content-hashed names cached for good, `index.html`
//! revalidated, a directory built after the relay started, no dotfiles, no
//! links out of the directory, stock's security headers and a CSP.

mod common;

use common::{Backend, start};

#[tokio::test]
async fn the_bundle_is_sent_compressed_and_cached_by_name() {
    let dist = tempfile::tempdir().unwrap();
    let web = dist.path().join("dist");
    let r = start(Backend::Sqlite, |c| c.web_dir = Some(web.clone())).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str, enc: &str| http.get(r.url(path)).header("accept-encoding", enc).send();
    // Not built yet: nothing to serve, and no restart needed once it is.
    assert_eq!(get("/", "br").await.unwrap().status().as_u16(), 404);
    std::fs::create_dir_all(&web).unwrap();
    let js = "hush-0123456789abcdef.js";
    std::fs::write(web.join("index.html"), "<!doctype html>").unwrap();
    std::fs::write(web.join(js), "x".repeat(1000)).unwrap();
    std::fs::write(web.join(format!("{js}.br")), "brotli!").unwrap();
    std::fs::write(web.join(format!("{js}.gz")), "gzip!!").unwrap();
    std::fs::write(web.join(".secret"), "no").unwrap();

    let index = get("/", "br, gzip").await.unwrap();
    assert_eq!(index.status().as_u16(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert_eq!(index.headers()["x-content-type-options"], "nosniff");
    assert_eq!(index.headers()["x-frame-options"], "DENY");
    let csp = index.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'")
            && !csp.contains("script-src 'self' 'unsafe-inline'"),
        "{csp}"
    );

    let br = get(&format!("/{js}"), "gzip, deflate, br").await.unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(
        br.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        br.headers()["vary"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    );
    assert_eq!(br.bytes().await.unwrap().as_ref(), b"brotli!");

    let gz = get(&format!("/{js}"), "gzip").await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let plain = get(&format!("/{js}"), "identity").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().len(), 1000);

    assert_eq!(get("/.secret", "").await.unwrap().status().as_u16(), 404);
    // A link out of the directory is not followed; one inside is.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "root:x:0:0").unwrap();
    std::os::unix::fs::symlink(outside.path().join("passwd"), web.join("passwd")).unwrap();
    std::os::unix::fs::symlink(web.join("index.html"), web.join("home.html")).unwrap();
    assert_eq!(get("/passwd", "").await.unwrap().status().as_u16(), 404);
    assert_eq!(get("/home.html", "").await.unwrap().status().as_u16(), 200);
    let api = get("/api/auth/salt", "").await.unwrap();
    assert_eq!(api.headers()["cache-control"], "no-store");
}
