//! Switchyard desktop app: a Tauri 2 host for the engine and the web console.
//!
//! Placeholder crate. The desktop issue replaces it with a Tauri app that embeds
//! `switchyard::Engine` (local mode) or connects to a `switchyard serve` (remote
//! mode); it stays a host and never grows a second backend.
