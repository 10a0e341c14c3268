-- Closed months' statements, frozen (domain/statements.py): one row per tenant and month, the statement's
-- JSON as it was computed at the close. The first one written is kept (the highest `earliest_first`):
-- a second close of the same month, in a replay or a race, never replaces it.
CREATE TABLE IF NOT EXISTS {database}.statements
(
    tenant_id      LowCardinality(String),
    month          String,
    body           String,
    closed_at      DateTime64(3, 'UTC'),
    written_at     DateTime64(3, 'UTC') DEFAULT now64(3),
    earliest_first UInt64 MATERIALIZED 7258118400000 - toUnixTimestamp64Milli(written_at)
)
ENGINE = ReplacingMergeTree(earliest_first)
ORDER BY (tenant_id, month);
