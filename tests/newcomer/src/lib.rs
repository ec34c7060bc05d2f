//! The newcomer test: every Rust block of `README.md`,
//! `crates/oauth2-adapters/README.md` and `docs/**/*.md`, copied verbatim
//! by `build.rs` at each build, compiled against the facade with only the
//! dependencies the docs tell a user to add (`Cargo.toml`). A block that
//! does not compile here would not compile for someone who copies it.
//!
//! ```sh
//! cargo check --manifest-path tests/newcomer/Cargo.toml
//! ```
//!
//! The generated modules are in `$OUT_DIR/blocks/`, one file per block,
//! named after its page and line.

include!(concat!(env!("OUT_DIR"), "/blocks.rs"));
