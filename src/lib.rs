//! Commons: one binary that hosts an open AI data-and-model economy on your own box.
//!
//! This crate is the top of the dependency graph (see ARCHITECTURE.md): the command line
//! ([`cli`]), configuration ([`config`]), node assembly ([`node`]), who-may-act checks
//! ([`auth`]), the HTTP edge ([`api`]) with the embedded console ([`web`]), and the client the
//! CLI uses ([`client`]). Only this crate knows HTTP, wire JSON and CLI output.

pub mod api;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod cli_ledger;
pub mod client;
pub mod config;
pub mod ledger;
pub mod node;
pub mod publish;
pub mod rpc;
pub mod serving;
mod web;
