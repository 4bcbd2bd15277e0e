//! The built web client at `/`: precompressed copies (`.br`, `.gz`, made by
//! `web/build.sh`) sent by `Accept-Encoding`, content-hashed files cached for
//! good, everything else revalidated, no dotfiles and nothing outside the
//! directory (tower-http's `ServeDir`), and a Content-Security-Policy.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::services::ServeDir;

/// What the web app may load: its own scripts and the wasm module (which
/// needs `wasm-unsafe-eval` to be compiled), its inline style, and
/// connections to this relay or, for `?server=URL`, another one. No inline
/// script, no frames, no plugins, no forms.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
connect-src 'self' http: https: ws: wss:; worker-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The files of `dir`, served once it exists.
pub fn files(dir: PathBuf) -> Router {
    let serve = ServeDir::new(&dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true);
    Router::new()
        .fallback_service(serve)
        .layer(axum::middleware::from_fn(cache_headers))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let dir = dir.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    let escapes = tokio::task::spawn_blocking(move || leaves_dir(&dir, &path))
                        .await
                        .unwrap_or(true);
                    if escapes {
                        return not_found();
                    }
                    next.run(req).await
                }
            },
        ))
}

/// Whether the file a request path names lies outside `dir` through a
/// symbolic link (ServeDir follows links): such files are not served.
pub fn leaves_dir(dir: &Path, uri_path: &str) -> bool {
    let Ok(root) = dir.canonicalize() else {
        // Not built yet: ServeDir answers 404 anyway.
        return false;
    };
    let decoded = percent_encoding::percent_decode_str(uri_path).decode_utf8_lossy();
    let mut p = root.clone();
    for seg in decoded.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if seg == ".." {
            return true;
        }
        p.push(seg);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match p.canonicalize() {
                Ok(target) if target.starts_with(&root) => p = target,
                _ => return true,
            },
            Ok(_) => {}
            // Missing: ServeDir's own 404.
            Err(_) => return false,
        }
    }
    false
}

fn not_found() -> Response {
    Response::builder()
        .status(404)
        .body(axum::body::Body::empty())
        .expect("a static response")
}

/// `hush-0123456789abcdef.js`, `hush_bg-0123456789abcdef.wasm`: named by
/// their content, so a new build has new names.
pub fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    stem.rsplit_once('-').is_some_and(|(_, h)| {
        h.len() == 16
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

async fn cache_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let dotfile = path.split('/').any(|seg| seg.starts_with('.'));
    if dotfile {
        return not_found();
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let cache = if is_content_hashed(&path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.entry(header::VARY)
        .or_insert(HeaderValue::from_static("accept-encoding"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_the_directory_are_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "no").unwrap();
        let dist = tempfile::tempdir().unwrap();
        let d = dist.path();
        std::fs::write(d.join("index.html"), "ok").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.join("leak")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("sub").join("out")).unwrap();
        std::os::unix::fs::symlink(d.join("index.html"), d.join("alias.html")).unwrap();
        assert!(leaves_dir(d, "/leak"));
        assert!(leaves_dir(d, "/sub/out/secret"));
        assert!(leaves_dir(d, "/sub/%6Fut/secret"), "percent-encoded");
        assert!(leaves_dir(d, "/../x"));
        assert!(!leaves_dir(d, "/alias.html"), "a link inside is fine");
        assert!(!leaves_dir(d, "/index.html"));
        assert!(!leaves_dir(d, "/missing"));
        assert!(!leaves_dir(d, "/"));
    }

    #[test]
    fn only_content_hashed_names_are_cached_for_good() {
        assert!(is_content_hashed("/hush-0123456789abcdef.js"));
        assert!(is_content_hashed("/hush_bg-0123456789abcdef.wasm"));
        assert!(!is_content_hashed("/index.html"));
        assert!(!is_content_hashed("/"));
        assert!(!is_content_hashed("/hush.js"));
        assert!(!is_content_hashed("/hush-0123.js"));
        assert!(!is_content_hashed("/hush-0123456789ABCDEF.js"));
    }
}
