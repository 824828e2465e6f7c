//! Shared helpers for the end-to-end tests.
//!
//! Binaries Cargo builds for this package are located with
//! `env!("CARGO_BIN_EXE_<name>")` inside the test binary itself, since Cargo
//! sets those variables only for tests.

use std::path::{Path, PathBuf};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
