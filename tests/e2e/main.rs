//! The end-to-end test binary: behaviour seen from outside the engine
//! (processes, crashes, restarts, the HTTP server) and the repository's own
//! rules.

mod crash;
mod server;
mod tidy;
