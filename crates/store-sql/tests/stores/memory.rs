//! The reference: core's `MemoryStore` passes the suite (without leases,
//! which it grants to everyone, being for one process).

use oauth2_adapters_core::store::MemoryStore;

use crate::conformance::Fixture;

async fn store() -> Option<Fixture> {
    Some(Fixture::new(MemoryStore::new()))
}

conformance_suite!(store());
