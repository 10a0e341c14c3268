-- Raw events, one row per event id: ReplacingMergeTree collapses redeliveries and replays.
-- A resolution re-published for a redelivered request keeps its id but gets a later created_at: the
-- earliest one is kept (the highest `earliest_first`), so every replica and replay agrees on the time.
CREATE TABLE IF NOT EXISTS {database}.resolution_events
(
    resolution_id   String,
    tenant_id       LowCardinality(String),
    ticket_id       String,
    decision        LowCardinality(String),
    adapter_version String,
    created_at      DateTime64(3, 'UTC'),
    latency_ms      UInt32,
    category        LowCardinality(String),
    confidence      Float32,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3),
    earliest_first  UInt64 MATERIALIZED 7258118400000 - toUnixTimestamp64Milli(created_at)
)
ENGINE = ReplacingMergeTree(earliest_first)
ORDER BY (tenant_id, resolution_id);

CREATE TABLE IF NOT EXISTS {database}.outcome_events
(
    event_id      String,
    resolution_id String,
    tenant_id     LowCardinality(String),
    ticket_id     String,
    kind          LowCardinality(String),
    csat_score    UInt8,
    occurred_at   DateTime64(3, 'UTC'),
    category      LowCardinality(String),
    ingested_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, resolution_id, event_id);

-- The settled lifecycle of each resolution; the row with the highest knowledge version wins.
CREATE TABLE IF NOT EXISTS {database}.resolution_lifecycles
(
    tenant_id     LowCardinality(String),
    resolution_id String,
    ticket_id     String,
    state         LowCardinality(String),
    created_at    DateTime64(3, 'UTC'),
    state_at      DateTime64(3, 'UTC'),
    billed_at     Nullable(DateTime64(3, 'UTC')),
    reopened_at   Nullable(DateTime64(3, 'UTC')),
    decided_by    String,
    csat_score    UInt8,
    category      LowCardinality(String),
    latency_ms    UInt32,
    decision      LowCardinality(String),
    version       UInt64,
    assumable_at  Nullable(DateTime64(3, 'UTC'))
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant_id, resolution_id);
