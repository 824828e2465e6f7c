//! Switchyard desktop app: a Tauri 2 host for the engine and the web
//! console, never a second backend.
//!
//! - [`host`]: the local engine (in this process, HTTP API on 127.0.0.1 with
//!   a random port and a per-launch token) or a remote server (URL + token).
//! - [`commands`]: `engine_url`, the one question the console asks.
//! - [`options`]: start-up flags and variables for automation.
//! - [`recents`]: the recent databases and servers (`recent.json`).
//! - [`secrets`]: remote tokens in the OS keychain, or memory only.
//! - [`notify`]: a notification when dead letters grow (local mode).
//! - `menu`: the native menu and what its items do.
//! - `connect`: the "Connect to Server…" window (a form without script).

mod commands;
mod connect;
pub mod host;
mod menu;
mod notify;
mod options;
mod recents;
mod secrets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use tauri::webview::NewWindowResponse;
use tauri::{AppHandle, Manager, RunEvent, Runtime, WebviewWindowBuilder};
use tauri_plugin_dialog::{DialogExt, MessageDialogKind};
use tauri_plugin_opener::OpenerExt;
use tokio::task::JoinHandle;

use crate::host::{Connection, EngineUrl, LocalEngine};
use crate::options::Start;
use crate::recents::{Recent, Recents};
use crate::secrets::Tokens;

/// The label of the console window (`tauri.conf.json`, capabilities).
const MAIN_WINDOW: &str = "main";

/// What the window can be switched to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Local { dir: PathBuf, demo: bool },
    Remote { url: String, token: Option<String> },
}

/// The app's state: what is open, and what it remembers.
pub(crate) struct Host {
    connection: tokio::sync::Mutex<Option<(Target, Connection)>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    recents: Mutex<Recents>,
    tokens: Tokens,
    default_dir: PathBuf,
}

impl Host {
    /// The console's answer to `engine_url`.
    pub(crate) async fn engine_url(&self) -> Option<EngineUrl> {
        let connection = self.connection.lock().await;
        connection.as_ref().map(|(_, c)| c.engine_url())
    }

    /// The data directory of the open local engine.
    pub(crate) async fn local_dir(&self) -> Option<PathBuf> {
        match &*self.connection.lock().await {
            Some((_, Connection::Local(local))) => Some(local.dir.clone()),
            _ => None,
        }
    }

    pub(crate) fn recent_entries(&self) -> Vec<Recent> {
        self.recents
            .lock()
            .expect("recents poisoned")
            .entries()
            .to_vec()
    }

    /// Opens `target`, then closes what was open (so a failure leaves the
    /// old connection in place), remembers it and points the window at it.
    async fn open<R: Runtime>(&self, app: &AppHandle<R>, target: Target) -> anyhow::Result<()> {
        let mut current = self.connection.lock().await;
        if current.as_ref().is_some_and(|(t, _)| *t == target) {
            return Ok(());
        }
        // Two engines must not open one directory: close first when equal.
        if let (Target::Local { dir, .. }, Some((Target::Local { dir: open, .. }, _))) =
            (&target, current.as_ref())
            && dir == open
            && let Some((_, old)) = current.take()
        {
            old.close().await;
        }
        let (connection, recent) = match &target {
            Target::Local { dir, demo } => {
                let local = LocalEngine::start(dir, *demo).await?;
                let watcher = notify::watch(app.clone(), &local.engine);
                if let Some(old) = self
                    .watcher
                    .lock()
                    .expect("watcher poisoned")
                    .replace(watcher)
                {
                    old.abort();
                }
                (Connection::Local(local), Recent::Local { dir: dir.clone() })
            }
            Target::Remote { url, token } => {
                let token = token.clone().or_else(|| self.tokens.load(url));
                let kept = token.as_deref().map(|t| self.tokens.store(url, t));
                if let Some(old) = self.watcher.lock().expect("watcher poisoned").take() {
                    old.abort();
                }
                (
                    Connection::Remote {
                        url: EngineUrl {
                            base_url: url.clone(),
                            token,
                        },
                        kept,
                    },
                    Recent::Remote { url: url.clone() },
                )
            }
        };
        let title = connection.title();
        if let Some((_, old)) = current.replace((target, connection)) {
            old.close().await;
        }
        drop(current);
        if let Err(e) = self.recents.lock().expect("recents poisoned").touch(recent) {
            tracing::warn!(error = %e, "cannot save the recent list");
        }
        if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
            let _ = window.set_title(&title);
            // The console asks `engine_url` again on load.
            let _ = window.reload();
        }
        menu::refresh(app);
        Ok(())
    }

    /// Closes whatever is open (at exit).
    async fn close(&self) {
        if let Some(watcher) = self.watcher.lock().expect("watcher poisoned").take() {
            watcher.abort();
        }
        if let Some((_, connection)) = self.connection.lock().await.take() {
            connection.close().await;
        }
    }
}

/// Switches the window to `target` in the background; failures become an
/// error dialog and leave the current connection open.
pub(crate) fn switch_to<R: Runtime>(app: &AppHandle<R>, target: Target) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let host = app.state::<Host>();
        if let Err(e) = host.open(&app, target).await {
            tracing::error!(error = format!("{e:#}"), "cannot switch");
            error_dialog(&app, format!("{e:#}"));
        }
    });
}

/// Opens "Connect to Server…"; a submitted server is shown at once if the
/// CSP already names it, else after a restart with it as the start option
/// (the CSP is fixed when the app starts).
pub(crate) fn ask_for_server<R: Runtime>(app: &AppHandle<R>) {
    let shown = connect::show(app, |app, submitted| match submitted {
        Ok(connect::Submitted { url, token }) => {
            if csp_allows(app.config(), &url) {
                switch_to(app, Target::Remote { url, token });
            } else if let Err(e) = restart_on(app, &url, token.as_deref()) {
                error_dialog(app, format!("cannot restart on {url}: {e:#}"));
            }
        }
        Err(message) => error_dialog(app, message),
    });
    if let Err(e) = shown {
        error_dialog(app, format!("cannot open the window: {e}"));
    }
}

fn error_dialog<R: Runtime>(app: &AppHandle<R>, message: String) {
    app.dialog()
        .message(message)
        .title("Switchyard")
        .kind(MessageDialogKind::Error)
        .show(|_| {});
}

/// Whether the console may reach `url` under the running CSP.
fn csp_allows(config: &tauri::Config, url: &str) -> bool {
    use tauri::utils::config::Csp;
    let Some(origin) = options::origin(url) else {
        return false;
    };
    if origin.starts_with("http://127.0.0.1:") {
        return true;
    }
    match &config.app.security.csp {
        Some(Csp::DirectiveMap(map)) => map
            .get("connect-src")
            .is_some_and(|sources| sources.contains(&origin)),
        Some(Csp::Policy(policy)) => policy.split_whitespace().any(|s| s == origin),
        None => true,
    }
}

/// Starts a new instance of the app on the server `url` and exits this one.
fn restart_on<R: Runtime>(
    app: &AppHandle<R>,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the app's executable")?;
    let mut command = std::process::Command::new(exe);
    command
        .env_remove("SWITCHYARD_DESKTOP_LOCAL")
        .env_remove("SWITCHYARD_DESKTOP_DEMO")
        .env_remove("SWITCHYARD_DESKTOP_TOKEN")
        .env("SWITCHYARD_DESKTOP_REMOTE", url);
    if let Some(token) = token {
        // The environment, not a flag: other users' `ps` cannot see it.
        command.env("SWITCHYARD_DESKTOP_TOKEN", token);
    }
    command.spawn().context("cannot start the app")?;
    tracing::info!(url, "restarting on a new server");
    app.exit(0);
    Ok(())
}

/// The target for a recent entry (a remote's token comes from the keychain).
pub(crate) fn target_of(recent: &Recent) -> Target {
    match recent {
        Recent::Local { dir } => Target::Local {
            dir: dir.clone(),
            demo: false,
        },
        Recent::Remote { url } => Target::Remote {
            url: url.clone(),
            token: None,
        },
    }
}

/// Runs the app until its window closes.
pub fn run() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,switchyard=info".into()),
        )
        .try_init();
    let start = match options::parse(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(start) => start,
        Err(message) => {
            eprintln!("switchyard-desktop: {message}");
            return ExitCode::from(2);
        }
    };
    match run_with(start) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard-desktop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(
    clippy::exit,
    reason = "`tauri::generate_context!` expands to a `process::exit` we do not call"
)]
fn run_with(start: Start) -> anyhow::Result<()> {
    let mut context = tauri::generate_context!();
    // The CSP lets the console reach the remote servers the user has chosen
    // (start-up option and recent list) besides the local engine.
    let config_dir = config_dir(context.config().identifier.as_str());
    let mut remotes: Vec<String> = Recents::load(&config_dir)
        .entries()
        .iter()
        .filter_map(|r| match r {
            Recent::Remote { url } => Some(url.clone()),
            Recent::Local { .. } => None,
        })
        .collect();
    if let Start::Remote { url, .. } = &start {
        remotes.push(url.clone());
    }
    allow_remotes_in_csp(context.config_mut(), &remotes);

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .register_uri_scheme_protocol(connect::SCHEME, |_, _| connect::page())
        .invoke_handler(tauri::generate_handler![commands::engine_url])
        .setup(move |app| {
            setup(app, start.clone())?;
            Ok(())
        })
        .build(context)
        .context("cannot build the app")?;
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            let host = app.state::<Host>();
            tauri::async_runtime::block_on(host.close());
        }
    });
    Ok(())
}

fn setup(app: &mut tauri::App, start: Start) -> anyhow::Result<()> {
    let handle = app.handle().clone();
    let config_dir = app.path().app_config_dir().context("no config directory")?;
    let data_dir = app.path().app_data_dir().context("no data directory")?;
    let recents = Recents::load(&config_dir);
    let target = match start {
        Start::Local { dir, demo } => Target::Local { dir, demo },
        Start::Remote { url, token } => Target::Remote { url, token },
        Start::Default { demo } => match recents.entries().first() {
            Some(Recent::Local { dir }) => Target::Local {
                dir: dir.clone(),
                demo,
            },
            Some(recent) => target_of(recent),
            None => Target::Local {
                dir: data_dir.join("default"),
                demo,
            },
        },
    };
    app.manage(Host {
        connection: tokio::sync::Mutex::new(None),
        watcher: Mutex::new(None),
        recents: Mutex::new(recents),
        tokens: Tokens::default(),
        default_dir: data_dir.join("default"),
    });
    menu::install(&handle)?;
    let window_config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN_WINDOW)
        .cloned()
        .context("no main window in tauri.conf.json")?;
    let opener = handle.clone();
    let opener_new = handle.clone();
    WebviewWindowBuilder::from_config(&handle, &window_config)?
        .on_navigation(move |url| {
            if is_app_url(url) {
                return true;
            }
            open_external(&opener, url.as_str());
            false
        })
        .on_new_window(move |url, _| {
            open_external(&opener_new, url.as_str());
            NewWindowResponse::Deny
        })
        .build()?;
    close_on_signal(&handle);
    let host = handle.state::<Host>();
    let opened = tauri::async_runtime::block_on(host.open(&handle, target.clone()));
    if let Err(e) = opened {
        // Say why, then fall back to the default local database so the
        // window is never empty.
        tracing::error!(error = format!("{e:#}"), ?target, "cannot open at start");
        handle
            .dialog()
            .message(format!(
                "{e:#}\n\nOpening the default local database instead."
            ))
            .title("Switchyard")
            .kind(MessageDialogKind::Error)
            .show(|_| {});
        let fallback = Target::Local {
            dir: host.default_dir.clone(),
            demo: false,
        };
        tauri::async_runtime::block_on(host.open(&handle, fallback))?;
    }
    Ok(())
}

/// SIGTERM or Ctrl-C closes the app like its window would: the engine is
/// drained and shut down (`RunEvent::Exit`).
fn close_on_signal<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
        }
        tracing::info!("signal received: closing");
        app.exit(0);
    });
}

/// Pages of the app itself (the embedded console, or the dev server).
fn is_app_url(url: &url::Url) -> bool {
    match url.scheme() {
        "tauri" => true,
        "http" | "https" => {
            url.host_str() == Some("tauri.localhost")
                || (cfg!(debug_assertions) && url.host_str() == Some("localhost"))
        }
        _ => matches!(url.scheme(), "about" | "data" | "blob"),
    }
}

/// Opens a link in the system browser (http, https and mailto only).
fn open_external<R: Runtime>(app: &AppHandle<R>, url: &str) {
    if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with("mailto:")) {
        tracing::warn!(url, "refusing to open a link of this kind");
        return;
    }
    if let Err(e) = app.opener().open_url(url, None::<&str>) {
        tracing::warn!(url, error = %e, "cannot open the link in the system browser");
    }
}

/// The app config directory before the app exists (same rule as Tauri's
/// `app_config_dir`: the platform config dir + the identifier).
fn config_dir(identifier: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_default();
    base.join(identifier)
}

/// Adds each remote's origin (http and ws forms) to `connect-src`.
fn allow_remotes_in_csp(config: &mut tauri::Config, remotes: &[String]) {
    use tauri::utils::config::{Csp, CspDirectiveSources};
    let Some(Csp::DirectiveMap(map)) = config.app.security.csp.as_mut() else {
        return;
    };
    let sources = map
        .entry("connect-src".to_owned())
        .or_insert_with(|| CspDirectiveSources::List(vec!["'self'".to_owned()]));
    for url in remotes {
        let Some(origin) = options::origin(url) else {
            continue;
        };
        let ws = origin
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        for source in [origin, ws] {
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_urls_stay_in_the_window_and_others_do_not() {
        let app = |u: &str| is_app_url(&url::Url::parse(u).expect("url"));
        assert!(app("tauri://localhost/queues"));
        assert!(app("http://tauri.localhost/"));
        assert!(!app("https://example.com/docs"));
        assert!(!app("http://127.0.0.1:4000/api/queues"));
    }

    #[test]
    fn remotes_join_connect_src_in_http_and_ws_forms() {
        let mut config: tauri::Config = serde_json::from_str(
            r#"{"identifier":"x.y","app":{"security":{"csp":{"connect-src":"'self' http://127.0.0.1:*"}}}}"#,
        )
        .expect("config");
        allow_remotes_in_csp(&mut config, &["https://sy.example.test:8443".to_owned()]);
        let csp = config.app.security.csp.clone().expect("csp").to_string();
        assert!(csp.contains("https://sy.example.test:8443"), "{csp}");
        assert!(csp.contains("wss://sy.example.test:8443"), "{csp}");
        assert!(csp.contains("http://127.0.0.1:*"), "{csp}");
        assert!(csp_allows(&config, "https://sy.example.test:8443"));
        assert!(csp_allows(&config, "http://127.0.0.1:7600"));
        assert!(!csp_allows(&config, "https://other.example.test"));
    }
}
