//! Start-up options, for people and for automation: which engine to show
//! first, without a click.
//!
//! | variable                      | flag            | meaning                                   |
//! |-------------------------------|-----------------|-------------------------------------------|
//! | `SWITCHYARD_DESKTOP_LOCAL`    | `--local DIR`   | local mode on this data directory         |
//! | `SWITCHYARD_DESKTOP_DEMO=1`   | `--demo`        | run the demo workload (local mode only)   |
//! | `SWITCHYARD_DESKTOP_REMOTE`   | `--remote URL`  | remote mode on this `switchyard serve`    |
//! | `SWITCHYARD_DESKTOP_TOKEN`    | (none)          | the remote's token (never a flag: `ps`)   |
//!
//! Flags win over variables. Without any, the app reopens the most recent
//! entry of its recent list, or else a local database in its data directory.

use std::path::PathBuf;

/// What to open at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Local mode on a data directory.
    Local { dir: PathBuf, demo: bool },
    /// Remote mode on a server.
    Remote { url: String, token: Option<String> },
    /// Nothing asked: the most recent entry, or the default local database.
    Default { demo: bool },
}

/// Reads the options from flags (`args`, without the program name) and
/// variables (`var`).
pub(crate) fn parse(
    args: impl IntoIterator<Item = String>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Start, String> {
    let mut local = var("SWITCHYARD_DESKTOP_LOCAL").filter(|v| !v.is_empty());
    let mut remote = var("SWITCHYARD_DESKTOP_REMOTE").filter(|v| !v.is_empty());
    let mut demo = var("SWITCHYARD_DESKTOP_DEMO").is_some_and(|v| is_truthy(&v));
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--local" => local = Some(args.next().ok_or("--local needs a directory")?),
            "--remote" => remote = Some(args.next().ok_or("--remote needs a URL")?),
            "--demo" => demo = true,
            // Arguments a desktop environment or a test harness may add.
            _ if arg.starts_with("-psn_") => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    match (local, remote) {
        (Some(_), Some(_)) => Err("choose local or remote mode, not both".to_owned()),
        (Some(dir), None) => Ok(Start::Local {
            dir: PathBuf::from(dir),
            demo,
        }),
        (None, Some(url)) => {
            let url = normalize_url(&url)?;
            let token = var("SWITCHYARD_DESKTOP_TOKEN").filter(|t| !t.is_empty());
            Ok(Start::Remote { url, token })
        }
        (None, None) => Ok(Start::Default { demo }),
    }
}

fn is_truthy(value: &str) -> bool {
    !matches!(value.trim(), "" | "0" | "false" | "no" | "off")
}

/// A server's base URL as the console wants it: `http(s)://host[:port]`,
/// no trailing slash.
pub(crate) fn normalize_url(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url.trim()).map_err(|e| format!("invalid URL `{url}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// The origin (`scheme://host[:port]`) of a normalized URL, for the CSP.
pub(crate) fn origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization()).filter(|o| o != "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn variables_start_local_mode_with_the_demo() {
        let start = parse(
            args(&[]),
            vars(&[
                ("SWITCHYARD_DESKTOP_LOCAL", "/tmp/x"),
                ("SWITCHYARD_DESKTOP_DEMO", "1"),
            ]),
        );
        assert_eq!(
            start,
            Ok(Start::Local {
                dir: PathBuf::from("/tmp/x"),
                demo: true
            })
        );
    }

    #[test]
    fn flags_win_over_variables_and_demo_zero_is_off() {
        let start = parse(
            args(&["--local", "/b"]),
            vars(&[
                ("SWITCHYARD_DESKTOP_LOCAL", "/a"),
                ("SWITCHYARD_DESKTOP_DEMO", "0"),
            ]),
        );
        assert_eq!(
            start,
            Ok(Start::Local {
                dir: PathBuf::from("/b"),
                demo: false
            })
        );
    }

    #[test]
    fn remote_takes_its_token_from_the_environment_only() {
        let start = parse(
            args(&["--remote", "http://example.test:8080/"]),
            vars(&[("SWITCHYARD_DESKTOP_TOKEN", "secret")]),
        );
        assert_eq!(
            start,
            Ok(Start::Remote {
                url: "http://example.test:8080".to_owned(),
                token: Some("secret".to_owned())
            })
        );
    }

    #[test]
    fn refuses_both_modes_unknown_flags_and_non_http_urls() {
        assert!(parse(args(&["--local", "/a", "--remote", "http://h"]), vars(&[])).is_err());
        assert!(parse(args(&["--bogus"]), vars(&[])).is_err());
        assert!(parse(args(&["--remote", "file:///etc"]), vars(&[])).is_err());
        assert_eq!(
            parse(args(&[]), vars(&[])),
            Ok(Start::Default { demo: false })
        );
    }

    #[test]
    fn origin_drops_the_path() {
        assert_eq!(
            origin("https://sy.example.test:8443/base").as_deref(),
            Some("https://sy.example.test:8443")
        );
    }
}
