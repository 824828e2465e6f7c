//! What the window shows: a local engine this process hosts, or a remote
//! `switchyard serve`. Either way the console gets a base URL and a token
//! and talks to the same HTTP API; this module never answers product
//! questions itself.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use switchyard::config::{Config, Role};
use switchyard::http::Auth;
use switchyard::{Engine, demo, http};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::secrets::Kept;

/// Origins the webview loads the console from: `tauri://localhost` on Linux
/// and macOS, `http://tauri.localhost` on Windows. The local engine's CORS
/// allows exactly these; a remote server must list them in
/// `http.cors_origins`.
pub const WEBVIEW_ORIGINS: [&str; 2] = ["tauri://localhost", "http://tauri.localhost"];

/// Milliseconds between the demo's orders in the desktop app.
const DEMO_ORDER_INTERVAL: Duration = Duration::from_millis(200);

/// Where the console finds the engine: the `engine_url` command's answer.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EngineUrl {
    /// `http://127.0.0.1:PORT` (local) or the server's URL (remote).
    pub base_url: String,
    /// Bearer token for the API (`None`: the console asks the user).
    pub token: Option<String>,
}

/// The connection the window shows now.
pub(crate) enum Connection {
    Local(LocalEngine),
    Remote { url: EngineUrl, kept: Option<Kept> },
}

impl Connection {
    pub(crate) fn engine_url(&self) -> EngineUrl {
        match self {
            Connection::Local(local) => local.url.clone(),
            Connection::Remote { url, .. } => url.clone(),
        }
    }

    /// The window title: what is open, and anything the user should know.
    pub(crate) fn title(&self) -> String {
        match self {
            Connection::Local(local) => format!(
                "Switchyard: local {}{}",
                local.dir.display(),
                if local.demo.is_some() { " (demo)" } else { "" }
            ),
            Connection::Remote { url, kept } => {
                let note = match kept {
                    Some(Kept::MemoryOnly(_)) => " (token in memory only: no OS keychain)",
                    _ if url.token.is_none() => " (no token)",
                    _ => "",
                };
                format!("Switchyard: server {}{note}", url.base_url)
            }
        }
    }

    /// Stops what this connection runs (nothing for a remote).
    pub(crate) async fn close(self) {
        if let Connection::Local(local) = self {
            local.stop().await;
        }
    }
}

/// An engine running in this process, served on 127.0.0.1 with a random
/// port and a token made for this launch.
pub(crate) struct LocalEngine {
    pub(crate) dir: PathBuf,
    pub(crate) engine: Engine,
    url: EngineUrl,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    demo: Option<demo::Demo>,
}

impl LocalEngine {
    /// Opens (or creates) the engine in `dir` and serves its HTTP API on
    /// `127.0.0.1:0`; with `demo`, runs the demo workload on it.
    pub(crate) async fn start(dir: &Path, demo: bool) -> anyhow::Result<LocalEngine> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory `{}`", dir.display()))?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut config = Config::default();
        config.storage.data_dir = Some(dir.to_path_buf());
        config.http.listen = listen;
        config.http.cors_origins = WEBVIEW_ORIGINS.iter().map(|o| (*o).to_owned()).collect();
        config.http.ui_dir = None;
        let token = launch_token();
        let auth = Auth::none().with_token(&token, Role::Admin);
        let engine = Engine::open(config)
            .await
            .with_context(|| format!("cannot open the engine in `{}`", dir.display()))?;
        // Never beyond loopback: the address is fixed above, not configured.
        let listener = TcpListener::bind(listen)
            .await
            .context("cannot listen on 127.0.0.1")?;
        let address = listener.local_addr().context("no local address")?;
        let running_demo = if demo {
            Some(
                demo::start(&engine, DEMO_ORDER_INTERVAL)
                    .await
                    .context("cannot start the demo workload")?,
            )
        } else {
            None
        };
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(listener, engine.clone(), auth, async {
            let _ = stop.await;
        }));
        tracing::info!(%address, dir = %dir.display(), demo, "local engine serving");
        Ok(LocalEngine {
            dir: dir.to_path_buf(),
            engine,
            url: EngineUrl {
                base_url: format!("http://{address}"),
                token: Some(token),
            },
            shutdown,
            server,
            demo: running_demo,
        })
    }

    /// Stops the demo and the server, then closes storage cleanly.
    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(());
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the local server failed"),
            Err(e) => tracing::warn!(error = %e, "the local server task failed"),
        }
        if let Some(demo) = self.demo
            && let Err(e) = demo.stop().await
        {
            tracing::warn!(error = %e, "cannot stop the demo");
        }
        self.engine.shutdown().await;
        tracing::info!(dir = %self.dir.display(), "local engine closed");
    }
}

/// 24 random bytes as hex: known to this process and the window only.
fn launch_token() -> String {
    rand::random::<[u8; 24]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_engine_serves_loopback_with_its_token_and_the_webview_origin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = LocalEngine::start(dir.path(), true).await.expect("start");
        let url = local.url.clone();
        assert!(url.base_url.starts_with("http://127.0.0.1:"), "{url:?}");
        let token = url.token.clone().expect("token");
        assert_eq!(token.len(), 48);
        let client = switchyard::client::Client::new(url.base_url.clone(), Some(token));
        let names: Vec<String> = client
            .queues()
            .await
            .expect("queues")
            .queues
            .into_iter()
            .map(|q| q.name)
            .collect();
        assert!(names.iter().any(|n| n == "orders"), "{names:?}");
        let anonymous = switchyard::client::Client::new(url.base_url.clone(), None);
        assert!(
            anonymous.queues().await.is_err(),
            "the API must want the token"
        );
        let from_webview = preflight(&url.base_url, "tauri://localhost").await;
        assert!(
            from_webview.contains("access-control-allow-origin: tauri://localhost"),
            "{from_webview}"
        );
        let stranger = preflight(&url.base_url, "https://evil.example").await;
        assert!(
            !stranger.contains("access-control-allow-origin"),
            "{stranger}"
        );
        local.stop().await;
    }

    /// The response head of a CORS preflight from `origin` (raw HTTP/1.1).
    async fn preflight(base_url: &str, origin: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = base_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let request = format!(
            "OPTIONS /api/queues HTTP/1.1\r\nHost: {address}\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: GET\r\n\
             Access-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        String::from_utf8_lossy(&response).to_lowercase()
    }
}
