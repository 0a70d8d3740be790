//! The `porter` binary; everything lives in the library.
//!
//! The binary uses mimalloc: under load the system allocator spent about a fifth of porter's
//! CPU time (much of it consolidating chunks freed on another thread than the one that
//! allocated them, which is how request buffers travel between tokio workers). Embedders
//! choose their own allocator.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    porter::run()
}
