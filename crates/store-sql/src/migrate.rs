//! The crate's own migrations and the bookkeeping both runners share.
//!
//! The migrations are embedded SQL files, applied in order in one
//! transaction and recorded in `oauth2_adapters_migrations` (not sqlx's
//! `_sqlx_migrations`, so an application's own sqlx migrations in the same
//! database never see them).

use oauth2_adapters_core::{Error, Result};

/// The table recording which of this crate's migrations ran.
pub(crate) const TABLE: &str = "oauth2_adapters_migrations";

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Its number, from the file name (`0001_...`).
    pub(crate) version: i64,
    /// Its description, from the file name.
    pub(crate) description: &'static str,
    /// The SQL, possibly several statements.
    pub(crate) sql: &'static str,
}

impl Migration {
    /// A stable fingerprint of the SQL (64-bit FNV-1a), recorded with the
    /// migration so that a shipped migration edited afterwards is noticed.
    pub(crate) fn checksum(&self) -> i64 {
        let hash = self
            .sql
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}

/// The SQLite migrations, in order.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "tokens",
        sql: include_str!("../migrations/sqlite/0001_tokens.sql"),
    },
    Migration {
        version: 2,
        description: "lease version",
        sql: include_str!("../migrations/sqlite/0002_lease_version.sql"),
    },
];

/// The PostgreSQL migrations, in order.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "tokens",
        sql: include_str!("../migrations/postgres/0001_tokens.sql"),
    },
    Migration {
        version: 2,
        description: "lease version",
        sql: include_str!("../migrations/postgres/0002_lease_version.sql"),
    },
];

/// The migrations still to apply, given the `(version, checksum)` rows
/// already recorded. Fails if a recorded migration is unknown to this build
/// (the database was migrated by a newer version of this crate) or was
/// applied with different SQL.
pub(crate) fn pending(
    all: &'static [Migration],
    applied: &[(i64, i64)],
) -> Result<&'static [Migration]> {
    for &(version, checksum) in applied {
        let Some(known) = all.iter().find(|m| m.version == version) else {
            return Err(Error::Store {
                message: format!(
                    "the database has migration {version} of oauth2-adapters-store-sql, \
                     which this version does not know (was it migrated by a newer version?)"
                ),
                source: None,
            });
        };
        if known.checksum() != checksum {
            return Err(Error::Store {
                message: format!(
                    "migration {version} of oauth2-adapters-store-sql was applied with \
                     different SQL than this version ships"
                ),
                source: None,
            });
        }
    }
    let done = all
        .iter()
        .take_while(|m| applied.iter().any(|&(version, _)| version == m.version))
        .count();
    if done != applied.len() {
        return Err(Error::Store {
            message: "the recorded migrations of oauth2-adapters-store-sql have a gap".into(),
            source: None,
        });
    }
    Ok(&all[done..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Migration] = &[
        Migration {
            version: 1,
            description: "one",
            sql: "CREATE TABLE a (x INT);",
        },
        Migration {
            version: 2,
            description: "two",
            sql: "CREATE TABLE b (x INT);",
        },
    ];

    #[test]
    fn pending_follows_what_was_applied() {
        let c1 = ALL[0].checksum();
        let c2 = ALL[1].checksum();
        assert_ne!(c1, c2);
        assert_eq!(pending(ALL, &[]).unwrap().len(), 2);
        assert_eq!(pending(ALL, &[(1, c1)]).unwrap()[0].version, 2);
        assert!(pending(ALL, &[(1, c1), (2, c2)]).unwrap().is_empty());
        assert!(pending(ALL, &[(1, c2)]).is_err(), "edited migration");
        assert!(pending(ALL, &[(3, 0)]).is_err(), "unknown migration");
        assert!(pending(ALL, &[(2, c2)]).is_err(), "gap");
    }

    #[test]
    fn shipped_migrations_are_numbered_in_order() {
        let mut lists: Vec<&[Migration]> = Vec::new();
        #[cfg(feature = "sqlite")]
        lists.push(SQLITE);
        #[cfg(feature = "postgres")]
        lists.push(POSTGRES);
        for list in lists {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(
                    m.version,
                    i64::try_from(i).unwrap() + 1,
                    "{}",
                    m.description
                );
            }
        }
    }
}
