-- oauth2-adapters-store-sql, SQLite, migration 1: tokens and refresh leases.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE oauth2_adapters_tokens (
    key           TEXT    NOT NULL PRIMARY KEY,
    provider      TEXT    NOT NULL,
    record        TEXT    NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0),
    updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth2_adapters_leases (
    key           TEXT    NOT NULL PRIMARY KEY,
    holder        TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
