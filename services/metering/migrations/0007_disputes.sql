-- Disputes of charges (domain/disputes.py): one row per tenant and resolution, rewritten when an operator
-- decides it. Not derived from any topic: a replay of the events leaves it as it is. The decided row
-- replaces the open one (`stage` 0 open, 1 decided); a dispute is decided once.
CREATE TABLE IF NOT EXISTS {database}.disputes
(
    tenant_id     LowCardinality(String),
    resolution_id String,
    reason        String,
    status        LowCardinality(String),
    opened_at     DateTime64(3, 'UTC'),
    decided_at    Nullable(DateTime64(3, 'UTC')),
    note          String DEFAULT '',
    credit_month  String DEFAULT '',
    credit        Decimal(18, 2) DEFAULT 0,
    stage         UInt8
)
ENGINE = ReplacingMergeTree(stage)
ORDER BY (tenant_id, resolution_id);
