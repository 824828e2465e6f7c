//! The `switchyard-desktop` binary: everything happens in `lib.rs::run()`.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")] // no console window on Windows

fn main() -> std::process::ExitCode {
    switchyard_desktop_lib::run()
}
