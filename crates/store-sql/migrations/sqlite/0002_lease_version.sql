-- oauth2-adapters-store-sql, SQLite, migration 2: the token version a lease
-- was taken for. 0: no token was stored; NULL: a lease taken before this
-- migration, for an unknown version (taken over as soon as it lapses).

ALTER TABLE oauth2_adapters_leases ADD COLUMN version INTEGER;
