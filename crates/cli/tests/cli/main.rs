//! The binary, run as an operator would, on SQLite and on PostgreSQL (and
//! `check`, which needs no database).

mod bad_input;
mod check;
mod delete;
mod harness;
mod list;
mod reencrypt;
mod refresh;
