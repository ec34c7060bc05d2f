//! The binary, run as an operator would, on SQLite and on PostgreSQL.

mod bad_input;
mod delete;
mod harness;
mod list;
mod reencrypt;
mod refresh;
