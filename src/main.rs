//! The `porter` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    porter::cli::run()
}
