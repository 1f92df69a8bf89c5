//! The `commons` binary.

use clap::Parser;

// The sequencer allocates and frees many short-lived buffers per block (trie nodes, RLP,
// redb pages); glibc malloc spent a sixth of its time growing and trimming its heap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = commons::cli::Cli::parse();
    match commons::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
