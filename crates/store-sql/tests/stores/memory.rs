//! The reference: core's `MemoryStore` passes the suite, leases included
//! (it keeps them, for managers sharing one store in one process).

use oauth2_adapters_core::store::MemoryStore;

use crate::conformance::Fixture;

async fn store() -> Option<Fixture> {
    Some(Fixture::new(MemoryStore::new()))
}

conformance_suite!(store(), leases);
