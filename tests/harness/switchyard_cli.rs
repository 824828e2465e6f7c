//! The `switchyard` command line, built inside this package so the
//! end-to-end tests can find it with `env!("CARGO_BIN_EXE_switchyard-under-test")`
//! (Cargo sets that only for binaries of the test's own package).

use std::process::ExitCode;

fn main() -> ExitCode {
    switchyard::cli::main()
}
