-- Hourly usage counters (domain/counters.py): what invoices and usage read instead of every lifecycle.
-- The sink writes each resolution's change (what it adds now minus what it added before), so rows of one
-- key sum to the figure; rows that sum to nothing are dropped as parts merge.
CREATE TABLE IF NOT EXISTS {database}.usage_counters
(
    tenant_id LowCardinality(String),
    kind      LowCardinality(String),
    period    DateTime('UTC'),
    label     LowCardinality(String),
    category  LowCardinality(String),
    value     Int64,
    n         Int64,
    total     Int64,
    total2    Int64
)
ENGINE = SummingMergeTree((n, total, total2))
ORDER BY (tenant_id, kind, period, label, category, value);

-- Tenants whose counters may have missed a write (a sink that died between writing lifecycles and their
-- counters): opened before a batch's writes, closed after; an open one is repaired from the raw rows at
-- the next start. '*' stands for every tenant (the backfill of this migration).
CREATE TABLE IF NOT EXISTS {database}.counter_repairs
(
    tenant_id  LowCardinality(String),
    batch_id   String,
    opened_at  DateTime64(3, 'UTC') DEFAULT now64(3),
    closed     UInt8
)
ENGINE = ReplacingMergeTree(closed)
ORDER BY (tenant_id, batch_id);

INSERT INTO {database}.counter_repairs (tenant_id, batch_id, closed) VALUES ('*', 'migration-0008', 0);
