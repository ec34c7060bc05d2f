//! The stores' tests: one conformance suite run against every store, then
//! each store's own tests. One test binary, to link sqlx once.

#[macro_use]
mod conformance;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[macro_use]
mod raw;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod at_rest;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod encryption;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_tls;
#[cfg(feature = "sqlite")]
mod sqlite;
