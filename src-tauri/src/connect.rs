//! "Connect to Server…": a small window with a script-free form for a
//! server's URL and token. Its page comes from the `connect` URI scheme;
//! submitting navigates to `https://connect.switchyard.invalid/?url=…&token=…`,
//! which the window's navigation guard intercepts (the request is never
//! made). No IPC, so the window has no capabilities at all.

use tauri::http::{Response, header};
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::options::normalize_url;

/// Window label.
pub(crate) const WINDOW: &str = "connect";

/// The URI scheme serving the form.
pub(crate) const SCHEME: &str = "connect";

/// Where the form submits (intercepted).
const SUBMIT_HOST: &str = "connect.switchyard.invalid";

const PAGE: &str = include_str!("../connect/connect.html");

/// The page's policy: no script, styles from the page, the form only to
/// the intercepted address.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action https://connect.switchyard.invalid; base-uri 'none'; frame-ancestors 'none'";

/// The `connect` scheme's response (any path: the form).
pub(crate) fn page() -> Response<Vec<u8>> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, PAGE_CSP)
        .body(PAGE.as_bytes().to_vec())
        .expect("static response")
}

/// A submitted form: the server's URL and token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Submitted {
    pub(crate) url: String,
    pub(crate) token: Option<String>,
}

/// Reads a submission; `None` for any other URL, `Some(Err)` for a bad
/// server URL.
pub(crate) fn submitted(url: &url::Url) -> Option<Result<Submitted, String>> {
    if url.host_str() != Some(SUBMIT_HOST) {
        return None;
    }
    let mut server = None;
    let mut token = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "url" => server = Some(value.into_owned()),
            "token" => token = Some(value.into_owned()).filter(|t| !t.is_empty()),
            _ => {}
        }
    }
    Some(normalize_url(server.as_deref().unwrap_or_default()).map(|url| Submitted { url, token }))
}

/// Shows the window (or focuses it); `on_submit` gets the submission.
pub(crate) fn show<R: Runtime>(
    app: &AppHandle<R>,
    on_submit: impl Fn(&AppHandle<R>, Result<Submitted, String>) + Send + 'static,
) -> tauri::Result<()> {
    if let Some(window) = app.get_webview_window(WINDOW) {
        return window.set_focus();
    }
    let page = if cfg!(windows) {
        format!("http://{SCHEME}.localhost/")
    } else {
        format!("{SCHEME}://localhost/")
    };
    let page_url = url::Url::parse(&page).expect("static URL");
    let handle = app.clone();
    WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::CustomProtocol(page_url.clone()))
        .title("Connect to Server")
        .inner_size(480.0, 400.0)
        .resizable(false)
        .on_navigation(move |url| {
            if url.scheme() == page_url.scheme() && url.host_str() == page_url.host_str() {
                return true;
            }
            if let Some(result) = submitted(url) {
                if let Some(window) = handle.get_webview_window(WINDOW) {
                    let _ = window.close();
                }
                on_submit(&handle, result);
            }
            false
        })
        .build()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(u: &str) -> Option<Result<Submitted, String>> {
        submitted(&url::Url::parse(u).expect("url"))
    }

    #[test]
    fn reads_the_form_and_ignores_other_urls() {
        assert_eq!(
            parse("https://connect.switchyard.invalid/?url=http%3A%2F%2Fh%3A7600%2F&token=a%2Bb"),
            Some(Ok(Submitted {
                url: "http://h:7600".to_owned(),
                token: Some("a+b".to_owned())
            }))
        );
        assert_eq!(
            parse("https://connect.switchyard.invalid/?url=http%3A%2F%2Fh&token="),
            Some(Ok(Submitted {
                url: "http://h".to_owned(),
                token: None
            }))
        );
        assert!(matches!(
            parse("https://connect.switchyard.invalid/?url=ftp%3A%2F%2Fh"),
            Some(Err(_))
        ));
        assert_eq!(parse("https://example.com/?url=http%3A%2F%2Fh"), None);
    }

    #[test]
    fn the_page_posts_to_the_intercepted_address_and_has_no_script() {
        assert!(PAGE.contains("action=\"https://connect.switchyard.invalid/\""));
        assert!(!PAGE.contains("<script"));
        assert!(PAGE_CSP.contains("default-src 'none'"));
    }
}
