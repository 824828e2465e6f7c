//! The console's assets: files from the configured `ui_dir` (a built
//! `ui/dist`), with `index.html` for unknown paths so the single-page app can
//! route; without a directory, a built-in empty-state page. Paths under
//! `/api/` that match no route answer `not_found` in the API's format.
//!
//! Public by design: the assets carry no data.

use std::path::{Component, Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::http::AppState;
use crate::http::error::ApiError;

/// The page served when no console is built.
const EMPTY_STATE: &str = include_str!("empty_state.html");

pub(crate) async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/api/") || path == "/api" || path == "/metrics" {
        return ApiError::not_found(format!("no route {} {path}", req.method())).into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::not_found(format!("no route {} {path}", req.method())).into_response();
    }
    match &state.engine.config().http.ui_dir {
        Some(dir) => serve_file(dir, &path).await,
        None => Html(EMPTY_STATE).into_response(),
    }
}

async fn serve_file(dir: &Path, path: &str) -> Response {
    let relative: PathBuf = Path::new(path.trim_start_matches('/'))
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect();
    let mut file = dir.join(&relative);
    if relative.as_os_str().is_empty() || !file.is_file() {
        // Single-page app: unknown paths get the index, assets stay 404.
        if path.starts_with("/assets/") {
            return ApiError::not_found(format!("no asset {path}")).into_response();
        }
        file = dir.join("index.html");
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, content_type(&file))],
            bytes,
        )
            .into_response(),
        Err(e) => {
            ApiError::not_found(format!("cannot read {}: {e}", file.display())).into_response()
        }
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
