#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub use oauth2_adapters_core::*;

/// The HyperSKU adapter (feature `hypersku`).
#[cfg(feature = "hypersku")]
pub mod hypersku {
    pub use oauth2_adapters_hypersku::*;
}

/// The Hike adapter (feature `hike`).
#[cfg(feature = "hike")]
pub mod hike {
    pub use oauth2_adapters_hike::*;
}

/// The partner bookings API adapter (feature `partner`).
#[cfg(feature = "partner")]
pub mod partner {
    pub use oauth2_adapters_partner::*;
}

/// SQLite and PostgreSQL token stores (features `sqlite`, `postgres`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod store_sql {
    pub use oauth2_adapters_store_sql::*;
}

/// Mock provider servers for tests (feature `testkit`).
#[cfg(feature = "testkit")]
pub mod testkit {
    pub use oauth2_adapters_testkit::*;
}

/// Compiles the workspace README's code blocks as doc tests, so they cannot rot.
#[cfg(all(doctest, feature = "hike", feature = "partner"))]
#[doc = include_str!("../../../README.md")]
pub struct WorkspaceReadmeDoctests;

/// Compiles the code blocks of `docs/adding-a-provider.md` as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/adding-a-provider.md")]
pub struct AddingAProviderDoctests;

/// Compiles the code blocks of `docs/token-manager.md` as doc tests.
#[cfg(all(doctest, feature = "hike", feature = "sqlite"))]
#[doc = include_str!("../../../docs/token-manager.md")]
pub struct TokenManagerDoctests;
