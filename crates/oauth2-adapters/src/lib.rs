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

/// Authenticated requests through `reqwest-middleware`: the token manager's
/// access token on every request, one refresh and one retry on a 401
/// (feature `middleware`).
#[cfg(feature = "middleware")]
pub mod middleware {
    pub use oauth2_adapters_middleware::*;
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

/// Compiles every page of the book (`docs/`, built with `mdbook build docs`)
/// as doc tests, so no Rust code block in the docs can rot.
#[cfg(all(doctest, feature = "full"))]
pub mod book_doctests {
    macro_rules! pages {
        ($($name:ident => $path:literal),* $(,)?) => {
            $(
                #[doc = include_str!(concat!("../../../docs/", $path))]
                pub struct $name;
            )*
        };
    }
    pages! {
        Introduction => "introduction.md",
        GettingStarted => "getting-started.md",
        Providers => "providers/index.md",
        HyperSku => "providers/hypersku.md",
        Hike => "providers/hike.md",
        Partner => "providers/partner.md",
        TokenManager => "token-manager.md",
        Middleware => "middleware.md",
        Observability => "observability.md",
        AddingAProvider => "adding-a-provider.md",
        ProviderSpecs => "provider-specs.md",
        Security => "security.md",
        Reliability => "reliability.md",
        Benchmarks => "benchmarks.md",
        Architecture => "architecture.md",
    }
}
