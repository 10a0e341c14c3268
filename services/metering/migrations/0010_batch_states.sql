-- How many resolutions each settling batch moved into each state (a first lifecycle, or a new state): what
-- the sink reports per batch, counted by the settling insert itself, so nothing reads the lifecycles back.
-- Read by batch id, dropped after a day.
ALTER TABLE {database}.lifecycle_changes ADD COLUMN IF NOT EXISTS batch_id String DEFAULT '';

CREATE TABLE IF NOT EXISTS {database}.batch_states
(
    batch_id  String,
    tenant_id LowCardinality(String),
    state     LowCardinality(String),
    n         Int64,
    staged_at DateTime('UTC') DEFAULT now()
)
ENGINE = SummingMergeTree(n)
ORDER BY (batch_id, tenant_id, state)
TTL staged_at + INTERVAL 1 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_change_states TO {database}.batch_states AS
SELECT batch_id, tenant_id, state, count() AS n FROM {database}.lifecycle_changes
WHERE NOT kept_present OR state != kept_state
GROUP BY batch_id, tenant_id, state;
