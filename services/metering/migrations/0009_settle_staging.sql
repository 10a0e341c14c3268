-- Scratch of the sink's settling in SQL (adapters/settle_sql.py): a batch's resolution keys (`replied`: the
-- batch holds a reply of it). Read by batch id, dropped after a day.
CREATE TABLE IF NOT EXISTS {database}.settle_keys
(
    batch_id      String,
    tenant_id     LowCardinality(String),
    resolution_id String,
    replied       UInt8 DEFAULT 0,
    staged_at     DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (batch_id, tenant_id, resolution_id)
TTL staged_at + INTERVAL 1 DAY;

-- A batch's lifecycle changes, each with the lifecycle it replaces (`kept_*`, `kept_present` 0 for a first
-- one). Stores nothing itself: the views below write the new lifecycle, and move its usage counters by what
-- it adds less what the replaced one added, in the same insert.
CREATE TABLE IF NOT EXISTS {database}.lifecycle_changes
(
    tenant_id        LowCardinality(String),
    resolution_id    String,
    ticket_id        String,
    state            LowCardinality(String),
    created_at       DateTime64(3, 'UTC'),
    state_at         DateTime64(3, 'UTC'),
    billed_at        Nullable(DateTime64(3, 'UTC')),
    reopened_at      Nullable(DateTime64(3, 'UTC')),
    decided_by       String,
    csat_score       UInt8,
    category         LowCardinality(String),
    latency_ms       UInt32,
    decision         LowCardinality(String),
    version          UInt64,
    assumable_at     Nullable(DateTime64(3, 'UTC')),
    kept_present     UInt8,
    kept_state       LowCardinality(String),
    kept_created_at  DateTime64(3, 'UTC'),
    kept_billed_at   Nullable(DateTime64(3, 'UTC')),
    kept_reopened_at Nullable(DateTime64(3, 'UTC')),
    kept_csat_score  UInt8,
    kept_category    LowCardinality(String),
    kept_latency_ms  UInt32
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_change_rows TO {database}.resolution_lifecycles AS
SELECT tenant_id, resolution_id, ticket_id, state, created_at, state_at, billed_at, reopened_at, decided_by,
       csat_score, category, latency_ms, decision, version, assumable_at
FROM {database}.lifecycle_changes;

-- The same counts as the store's COUNTERS_FROM_LIFECYCLES (state, latency, charge), +1 for the new
-- lifecycle and -1 for the one it replaces.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_change_counts TO {database}.usage_counters AS
SELECT tenant_id, c.1 AS kind, c.2 AS period, c.3 AS label, c.4 AS category, c.5 AS value,
       sum(c.6) AS n, sum(c.7) AS total, sum(c.8) AS total2
FROM (SELECT tenant_id, arrayJoin(arrayFilter(x -> x.6 != 0, [
    ('state', toDateTime(toStartOfHour(created_at), 'UTC'), toString(state), toString(category), toInt64(0),
     toInt64(1), toInt64(csat_score), toInt64(csat_score > 0)),
    ('latency', toDateTime(toStartOfHour(created_at), 'UTC'), '', '', toInt64(latency_ms),
     toInt64(1), toInt64(0), toInt64(0)),
    ('charge', toDateTime(toStartOfHour(ifNull(billed_at, created_at)), 'UTC'), '', '',
     toInt64(if(reopened_at IS NULL, 0, toYear(assumeNotNull(reopened_at)) * 100 + toMonth(assumeNotNull(reopened_at)))),
     toInt64(billed_at IS NOT NULL), toInt64(0), toInt64(0)),
    ('state', toDateTime(toStartOfHour(kept_created_at), 'UTC'), toString(kept_state), toString(kept_category),
     toInt64(0), -toInt64(kept_present), -toInt64(kept_csat_score) * kept_present,
     -toInt64(kept_csat_score > 0) * kept_present),
    ('latency', toDateTime(toStartOfHour(kept_created_at), 'UTC'), '', '', toInt64(kept_latency_ms),
     -toInt64(kept_present), toInt64(0), toInt64(0)),
    ('charge', toDateTime(toStartOfHour(ifNull(kept_billed_at, kept_created_at)), 'UTC'), '', '',
     toInt64(if(kept_reopened_at IS NULL, 0,
                toYear(assumeNotNull(kept_reopened_at)) * 100 + toMonth(assumeNotNull(kept_reopened_at)))),
     -toInt64(kept_present AND kept_billed_at IS NOT NULL), toInt64(0), toInt64(0))
])) AS c FROM {database}.lifecycle_changes)
GROUP BY tenant_id, kind, period, label, category, value
HAVING n != 0 OR total != 0 OR total2 != 0;
