//! The repository's own rules, checked by reading the source (rust-analyzer's
//! tidy tests): module docs, dependency direction, no skipped tests.

use std::path::{Path, PathBuf};

use switchyard_e2e::repo_root;

struct SourceFile {
    path: PathBuf,
    text: String,
}

fn rust_files(dir: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                files.push(SourceFile { path, text });
            }
        }
    }
    assert!(!files.is_empty(), "no Rust files under {}", dir.display());
    files
}

fn all_crates() -> Vec<SourceFile> {
    let root = repo_root();
    [
        "engine/src",
        "engine/benches",
        "tests",
        "bench/src",
        "src-tauri/src",
    ]
    .iter()
    .flat_map(|dir| rust_files(&root.join(dir)))
    .collect()
}

#[test]
fn every_module_says_what_it_owns() {
    // Goal: each file opens with a `//!` doc saying what it is for.
    for file in all_crates() {
        assert!(
            file.text.starts_with("//!"),
            "{}: start the file with a `//!` module doc",
            file.path.display()
        );
    }
}

#[test]
fn domain_modules_do_not_reach_outward() {
    // Goal: queue logic never names the HTTP layer, the CLI or a database driver.
    let root = repo_root();
    for file in rust_files(&root.join("engine/src/queue")) {
        for banned in [
            "crate::http",
            "crate::cli",
            "axum::",
            "clap::",
            "rusqlite::",
            "tokio_postgres::",
        ] {
            assert!(
                !file.text.contains(banned),
                "{}: must not use `{banned}`",
                file.path.display()
            );
        }
    }
}

#[test]
fn only_the_sqlite_backend_names_rusqlite() {
    let root = repo_root();
    let backend = root.join("engine/src/storage/sqlite");
    for file in rust_files(&root.join("engine/src")) {
        if file.path.starts_with(&backend) {
            continue;
        }
        assert!(
            !file.text.contains("rusqlite::"),
            "{}: only storage/sqlite may use rusqlite",
            file.path.display()
        );
    }
}

#[test]
fn no_test_is_skipped_or_expected_to_panic() {
    // Goal: every test can fail. Assert the current behaviour with a FIXME instead.
    let ignore = ["#[", "ignore]"].concat();
    let should_panic = ["#[", "should_panic"].concat();
    for file in all_crates() {
        assert!(
            !file.text.contains(&ignore),
            "{}: no ignored tests",
            file.path.display()
        );
        assert!(
            !file.text.contains(&should_panic),
            "{}: no should_panic tests",
            file.path.display()
        );
    }
}

#[test]
fn the_library_never_reads_the_environment() {
    // Goal: only the CLI reads env and args (invariant: the library takes its
    // world as arguments, so tests and the desktop app can embed it).
    let root = repo_root();
    let cli = root.join("engine/src/cli");
    for file in rust_files(&root.join("engine/src")) {
        if file.path.starts_with(&cli) || file.path.ends_with("main.rs") {
            continue;
        }
        for banned in ["std::env::var", "env::args", "std::env::args"] {
            assert!(
                !file.text.contains(banned),
                "{}: the library must not use `{banned}`",
                file.path.display()
            );
        }
    }
}
