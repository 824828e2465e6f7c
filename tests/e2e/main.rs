//! The end-to-end test binary: behaviour seen from outside the engine
//! (processes, crashes, restarts) and the repository's own rules.

mod crash;
mod tidy;
