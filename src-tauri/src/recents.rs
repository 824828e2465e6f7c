//! The recent databases and servers, newest first, persisted as JSON in the
//! app's config directory (`recent.json`). Tokens are never written here:
//! they live in the OS keychain (see [`crate::secrets`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many entries the list keeps.
pub(crate) const ENTRIES_MAX: usize = 10;

/// File name in the app's config directory.
pub(crate) const FILE: &str = "recent.json";

/// One place the app has shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Recent {
    /// A local data directory.
    Local { dir: PathBuf },
    /// A `switchyard serve` base URL.
    Remote { url: String },
}

impl Recent {
    /// What the menu shows.
    pub(crate) fn label(&self) -> String {
        match self {
            Recent::Local { dir } => format!("Local: {}", dir.display()),
            Recent::Remote { url } => format!("Server: {url}"),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RecentFile {
    entries: Vec<Recent>,
}

/// The list and where it is kept.
#[derive(Debug)]
pub(crate) struct Recents {
    file: PathBuf,
    entries: Vec<Recent>,
}

impl Recents {
    /// Loads `dir/recent.json`; a missing or unreadable file is an empty
    /// list (logged), never a reason not to start.
    pub(crate) fn load(dir: &Path) -> Recents {
        let file = dir.join(FILE);
        let entries = match std::fs::read_to_string(&file) {
            Ok(text) => match serde_json::from_str::<RecentFile>(&text) {
                Ok(parsed) => parsed.entries,
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "ignoring an unreadable recent list");
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the recent list");
                Vec::new()
            }
        };
        Recents { file, entries }
    }

    /// Newest first.
    pub(crate) fn entries(&self) -> &[Recent] {
        &self.entries
    }

    /// Moves `entry` to the front (adding it if new), trims the list and
    /// saves it.
    pub(crate) fn touch(&mut self, entry: Recent) -> std::io::Result<()> {
        self.entries.retain(|e| *e != entry);
        self.entries.insert(0, entry);
        self.entries.truncate(ENTRIES_MAX);
        self.save()
    }

    fn save(&self) -> std::io::Result<()> {
        if let Some(parent) = self.file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = serde_json::to_string_pretty(&RecentFile {
            entries: self.entries.clone(),
        })
        .map_err(std::io::Error::other)?;
        // Write then rename, so a crash never leaves half a file.
        let partial = self.file.with_extension("json.partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_moves_to_front_dedupes_trims_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut recents = Recents::load(dir.path());
        assert!(recents.entries().is_empty());
        for i in 0..12 {
            recents
                .touch(Recent::Local {
                    dir: PathBuf::from(format!("/db/{i}")),
                })
                .expect("save");
        }
        recents
            .touch(Recent::Local {
                dir: PathBuf::from("/db/5"),
            })
            .expect("save");
        recents
            .touch(Recent::Remote {
                url: "http://h:1".to_owned(),
            })
            .expect("save");
        let again = Recents::load(dir.path());
        assert_eq!(again.entries().len(), ENTRIES_MAX);
        assert_eq!(
            again.entries()[0],
            Recent::Remote {
                url: "http://h:1".to_owned()
            }
        );
        assert_eq!(
            again.entries()[1],
            Recent::Local {
                dir: PathBuf::from("/db/5")
            }
        );
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("file");
        assert!(text.contains("\"kind\": \"remote\""), "{text}");
    }

    #[test]
    fn a_corrupt_file_is_an_empty_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), "{not json").expect("write");
        assert!(Recents::load(dir.path()).entries().is_empty());
    }
}
