//! End-to-end tests of the real `commons` binary: each test starts `commons serve` on a
//! temporary data dir and a port the OS picks, and drives it over HTTP and through its own
//! command line. One test binary for all of them (`autotests = false`), as ripgrep does.
//!
//! Build with `cargo test --test tests --no-run`, run with `cargo test --test tests`.
//! `COMMONS_CRASH_ROUNDS` sets how many times the crash test kills the node (default 20).

mod support;

mod console_browser;
mod console_files;
mod crash;
mod datanets;
mod errors;
mod ledger;
mod openai;
mod pg_clients;
mod rpc_compat;
mod search;
mod sql;
