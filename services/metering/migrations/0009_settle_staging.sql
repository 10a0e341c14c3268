-- Scratch of the sink's settling in SQL (adapters/settle_sql.py): a batch's resolution keys, and what
-- those resolutions added to the usage counters before the batch. Read by batch id, dropped after a day.
CREATE TABLE IF NOT EXISTS {database}.settle_keys
(
    batch_id      String,
    tenant_id     LowCardinality(String),
    resolution_id String,
    staged_at     DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (batch_id, tenant_id, resolution_id)
TTL staged_at + INTERVAL 1 DAY;

CREATE TABLE IF NOT EXISTS {database}.settle_counts
(
    batch_id  String,
    tenant_id LowCardinality(String),
    kind      LowCardinality(String),
    period    DateTime('UTC'),
    label     LowCardinality(String),
    category  LowCardinality(String),
    value     Int64,
    n         Int64,
    total     Int64,
    total2    Int64,
    staged_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (batch_id, tenant_id, kind, period)
TTL staged_at + INTERVAL 1 DAY;
