-- Each tenant's watermark (latest event time seen), kept as it advances so that settling a batch does
-- not scan the tenant's whole history. Rows only ever raise it: read with max(). Backfilled from the
-- events already stored.
CREATE TABLE IF NOT EXISTS {database}.tenant_watermarks
(
    tenant_id LowCardinality(String),
    watermark DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(watermark)
ORDER BY tenant_id;

INSERT INTO {database}.tenant_watermarks
SELECT tenant_id, max(moment)
FROM
(
    SELECT tenant_id, created_at AS moment FROM {database}.resolution_events
    UNION ALL
    SELECT tenant_id, occurred_at AS moment FROM {database}.outcome_events
)
GROUP BY tenant_id;
