//! The `switchyard` binary: parses arguments and delegates to [`switchyard::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    switchyard::cli::main()
}
