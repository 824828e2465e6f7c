//! Layered configuration of `switchyard serve`: defaults, then a TOML file,
//! then `SWITCHYARD_*` environment variables, then flags. `config dump`
//! prints the result with secrets redacted.
//!
//! Environment: the short names `SWITCHYARD_DATA_DIR`, `SWITCHYARD_LISTEN`,
//! `SWITCHYARD_UI_DIR`, `SWITCHYARD_ADMIN_TOKEN`, `SWITCHYARD_DURABILITY`,
//! `SWITCHYARD_CORS_ORIGINS` (comma-separated), and any setting as
//! `SWITCHYARD_<SECTION>__<KEY>` (e.g. `SWITCHYARD_QUEUE__PAYLOAD_BYTES_MAX`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use toml::{Table, Value};

use crate::config::Config;

/// The file read when neither `--config` nor `SWITCHYARD_CONFIG` names one.
const DEFAULT_FILE: &str = "switchyard.toml";
/// Data directory when none is configured.
const DEFAULT_DATA_DIR: &str = "switchyard-data";
/// Console assets used when present and none is configured.
const DEFAULT_UI_DIR: &str = "ui/dist";

/// Flags that override the configuration (shared by `serve` and `config dump`).
#[derive(Debug, Default, clap::Args)]
pub(super) struct ConfigFlags {
    /// TOML configuration file (default: `switchyard.toml` when present;
    /// env `SWITCHYARD_CONFIG`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of the database (created if missing).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long)]
    listen: Option<String>,
    /// Directory of the console's built assets (default `ui/dist` when
    /// present, else a built-in page).
    #[arg(long)]
    ui_dir: Option<PathBuf>,
    /// Acknowledge commits before they are fsynced.
    #[arg(long)]
    relaxed: bool,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum ConfigCommand {
    /// Print the effective configuration as TOML (secrets redacted).
    Dump(ConfigFlags),
}

pub(super) fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Dump(flags) => {
            let config = load(&flags)?;
            print!("{}", toml::to_string(&config.redacted())?);
            Ok(())
        }
    }
}

/// Builds the configuration from every layer.
pub(super) fn load(flags: &ConfigFlags) -> anyhow::Result<Config> {
    let mut table = Table::try_from(Config::default()).context("cannot encode the defaults")?;
    let file = flags
        .config
        .clone()
        .or_else(|| std::env::var_os("SWITCHYARD_CONFIG").map(PathBuf::from))
        .or_else(|| {
            Path::new(DEFAULT_FILE)
                .exists()
                .then(|| PathBuf::from(DEFAULT_FILE))
        });
    if let Some(file) = file {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read configuration file `{}`", file.display()))?;
        let layer: Table = toml::from_str(&text)
            .with_context(|| format!("invalid configuration file `{}`", file.display()))?;
        merge(&mut table, layer);
    }
    merge(&mut table, env_layer(std::env::vars())?);
    merge(&mut table, flag_layer(flags));
    let mut config: Config = table
        .try_into()
        .context("invalid configuration (after file, environment and flags)")?;
    // The standard OpenTelemetry variables (OTEL_EXPORTER_OTLP_ENDPOINT,
    // OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER...) configure span export.
    config
        .telemetry
        .apply_otel_env(|name| std::env::var(name).ok())
        .map_err(anyhow::Error::msg)?;
    if config.storage.data_dir.is_none() {
        config.storage.data_dir = Some(PathBuf::from(DEFAULT_DATA_DIR));
    }
    if config.http.ui_dir.is_none() && Path::new(DEFAULT_UI_DIR).join("index.html").exists() {
        config.http.ui_dir = Some(PathBuf::from(DEFAULT_UI_DIR));
    }
    Ok(config)
}

fn merge(base: &mut Table, layer: Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base)), Value::Table(layer)) => merge(base, layer),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn set(table: &mut Table, section: &str, key: &str, value: Value) {
    let section = table
        .entry(section.to_owned())
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(section) = section {
        section.insert(key.to_owned(), value);
    }
}

/// A value from the environment: TOML when it parses as one, else a string.
fn env_value(text: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

fn env_layer(vars: impl Iterator<Item = (String, String)>) -> anyhow::Result<Table> {
    let mut table = Table::new();
    for (name, text) in vars {
        let Some(rest) = name.strip_prefix("SWITCHYARD_") else {
            continue;
        };
        let string = Value::String(text.clone());
        match rest {
            "DATA_DIR" => set(&mut table, "storage", "data_dir", string),
            "DURABILITY" => set(&mut table, "storage", "durability", string),
            "LISTEN" => set(&mut table, "http", "listen", string),
            "UI_DIR" => set(&mut table, "http", "ui_dir", string),
            "ADMIN_TOKEN" => set(&mut table, "auth", "admin_token", string),
            "CORS_ORIGINS" => set(
                &mut table,
                "http",
                "cors_origins",
                Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|o| !o.is_empty())
                        .map(|o| Value::String(o.to_owned()))
                        .collect(),
                ),
            ),
            _ => {
                if let Some((section, key)) = rest.split_once("__") {
                    if section.is_empty() || key.is_empty() {
                        bail!(
                            "environment variable `{name}`: expected SWITCHYARD_<SECTION>__<KEY>"
                        );
                    }
                    set(
                        &mut table,
                        &section.to_ascii_lowercase(),
                        &key.to_ascii_lowercase(),
                        env_value(&text),
                    );
                }
            }
        }
    }
    Ok(table)
}

fn flag_layer(flags: &ConfigFlags) -> Table {
    let mut table = Table::new();
    let path = |p: &Path| Value::String(p.display().to_string());
    if let Some(dir) = &flags.data_dir {
        set(&mut table, "storage", "data_dir", path(dir));
    }
    if let Some(listen) = &flags.listen {
        set(&mut table, "http", "listen", Value::String(listen.clone()));
    }
    if let Some(dir) = &flags.ui_dir {
        set(&mut table, "http", "ui_dir", path(dir));
    }
    if flags.relaxed {
        set(
            &mut table,
            "storage",
            "durability",
            Value::String("relaxed".to_owned()),
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn layers_apply_in_order() {
        let mut table = Table::try_from(Config::default()).expect("defaults encode");
        merge(
            &mut table,
            toml::from_str("[http]\nlisten = \"127.0.0.1:1\"\n[queue]\nbatch_messages_max = 7\n")
                .expect("toml"),
        );
        merge(
            &mut table,
            env_layer(vars(&[
                ("SWITCHYARD_LISTEN", "127.0.0.1:2"),
                ("SWITCHYARD_QUEUE__PAYLOAD_BYTES_MAX", "99"),
                ("SWITCHYARD_CORS_ORIGINS", "http://a, http://b"),
                ("OTHER", "x"),
            ]))
            .expect("env"),
        );
        merge(
            &mut table,
            flag_layer(&ConfigFlags {
                listen: Some("127.0.0.1:3".to_owned()),
                ..ConfigFlags::default()
            }),
        );
        let config: Config = table.try_into().expect("valid");
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:3");
        assert_eq!(config.queue.batch_messages_max, 7);
        assert_eq!(config.queue.payload_bytes_max, 99);
        assert_eq!(config.http.cors_origins, ["http://a", "http://b"]);
    }
}
