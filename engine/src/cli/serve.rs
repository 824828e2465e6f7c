//! `switchyard serve`: load the configuration, resolve the API tokens, open
//! the engine, bind, serve until SIGTERM or Ctrl-C, then drain and close
//! storage cleanly. `--demo` runs the demo workload on the same engine.
//!
//! Tokens: those configured (`SWITCHYARD_ADMIN_TOKEN`, `auth.*`), or else an
//! admin token generated on first start, printed once, and kept only as its
//! SHA-256 in `<data dir>/admin-token.sha256`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::cli::config::{ConfigFlags, load};
use crate::config::{Config, Role};
use crate::http::Auth;
use crate::http::auth::token_sha256_hex;
use crate::{Engine, demo, http};

/// File in the data directory holding the generated admin token's digest.
pub(super) const TOKEN_FILE: &str = "admin-token.sha256";

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    flags: ConfigFlags,
    /// Run the order-processing demo workload on the same engine.
    #[arg(long)]
    demo: bool,
    /// Milliseconds between the demo's orders.
    #[arg(long, default_value_t = 100)]
    demo_order_interval_ms: u64,
}

pub(super) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load(&args.flags)?;
    let listen = config.http.listen;
    if !listen.ip().is_loopback() && !config.auth.is_configured() {
        bail!(
            "refusing to listen on {listen} (not loopback) without configured tokens: \
             set SWITCHYARD_ADMIN_TOKEN or `auth.tokens` in the configuration file"
        );
    }
    let data_dir = config
        .storage
        .data_dir
        .clone()
        .context("no data directory configured")?;
    let auth = resolve_auth(&config, &data_dir)?;
    let engine = Engine::open(config)
        .await
        .with_context(|| format!("cannot open the engine in `{}`", data_dir.display()))?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr().context("no local address")?;
    println!("switchyard: listening on http://{address}");
    let running_demo = if args.demo {
        let demo = demo::start(&engine, Duration::from_millis(args.demo_order_interval_ms))
            .await
            .context("cannot start the demo")?;
        println!("switchyard: demo workload running (orders -> payments -> shipping)");
        Some(demo)
    } else {
        None
    };
    let served = http::serve(listener, engine.clone(), auth, shutdown_signal()).await;
    if let Some(demo) = running_demo {
        demo.stop().await.context("cannot stop the demo")?;
    }
    engine.shutdown().await;
    served.context("the server failed")?;
    println!("switchyard: stopped; storage closed cleanly");
    Ok(())
}

/// The configured tokens, or the generated admin token (created and
/// printed once on first start).
fn resolve_auth(config: &Config, data_dir: &Path) -> anyhow::Result<Auth> {
    if config.auth.is_configured() {
        return Auth::from_config(&config.auth).map_err(anyhow::Error::msg);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory `{}`", data_dir.display()))?;
    let file = data_dir.join(TOKEN_FILE);
    if file.exists() {
        let digest = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read `{}`", file.display()))?;
        let auth = Auth::none()
            .with_digest_hex(digest.trim(), Role::Admin)
            .with_context(|| format!("`{}` does not hold a SHA-256 digest", file.display()))?;
        println!(
            "switchyard: admin token: the one printed on first start (digest in {})",
            file.display()
        );
        return Ok(auth);
    }
    let token: String = rand::random::<[u8; 24]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    write_private(&file, &format!("{}\n", token_sha256_hex(&token)))?;
    println!(
        "switchyard: generated admin token (shown once; only its digest is kept in {}): {token}",
        file.display()
    );
    Ok(Auth::none().with_token(&token, Role::Admin))
}

fn write_private(file: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(file)
        .with_context(|| format!("cannot create `{}`", file.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write `{}`", file.display()))
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
