//! The web console: the files of `web/`, embedded in the binary at build time, so the binary
//! serves its own UI with no build step. Unknown paths get `index.html` (hash routing).

use rust_embed::RustEmbed;
use warp::http::StatusCode;

use crate::api::{Resp, respond};

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// Answer a GET for a console path.
pub(crate) fn serve(path: &str) -> Resp {
    let p = path.trim_start_matches('/');
    let p = if p.is_empty() { "index.html" } else { p };
    match Assets::get(p) {
        Some(f) => {
            let mime = mime_guess::from_path(p).first_or_octet_stream();
            let mut r = respond(StatusCode::OK, mime.as_ref(), f.data.into_owned());
            r.headers_mut().insert(
                "cache-control",
                warp::http::HeaderValue::from_static("no-cache"),
            );
            r
        }
        None if !p.contains('.') || p.ends_with(".html") => match Assets::get("index.html") {
            Some(f) => respond(
                StatusCode::OK,
                "text/html; charset=utf-8",
                f.data.into_owned(),
            ),
            None => respond(StatusCode::NOT_FOUND, "text/plain", "console not built in"),
        },
        None => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("{path} not found"),
        ),
    }
}
