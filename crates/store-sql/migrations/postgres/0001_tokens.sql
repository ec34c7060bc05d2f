-- oauth2-adapters-store-sql, PostgreSQL, migration 1: tokens and refresh leases.

CREATE TABLE oauth2_adapters_tokens (
    key        TEXT        NOT NULL PRIMARY KEY,
    provider   TEXT        NOT NULL,
    record     TEXT        NOT NULL,
    version    BIGINT      NOT NULL CHECK (version > 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE oauth2_adapters_leases (
    key        TEXT        NOT NULL PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
