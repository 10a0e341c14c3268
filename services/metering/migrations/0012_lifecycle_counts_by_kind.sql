-- Migration 0009's lifecycle_change_counts, as six views: one per kind of counter for the new lifecycle
-- (+), and one per kind for the lifecycle it replaces (-), that one reading only the changes that replace
-- one. The same counters (a change's + and - rows of one key now land as two rows, summed as parts merge);
-- about a third of the work: no array of six tuples built and unrolled for every change.
DROP VIEW IF EXISTS {database}.lifecycle_change_counts;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_added_states TO {database}.usage_counters AS
SELECT tenant_id, 'state' AS kind, toDateTime(toStartOfHour(created_at), 'UTC') AS period,
       toString(state) AS label, toString(category) AS category, toInt64(0) AS value,
       toInt64(count()) AS n, toInt64(sum(csat_score)) AS total, toInt64(countIf(csat_score > 0)) AS total2
FROM {database}.lifecycle_changes
GROUP BY tenant_id, period, label, category;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_added_latencies TO {database}.usage_counters AS
SELECT tenant_id, 'latency' AS kind, toDateTime(toStartOfHour(created_at), 'UTC') AS period, '' AS label,
       '' AS category, toInt64(latency_ms) AS value, toInt64(count()) AS n, toInt64(0) AS total,
       toInt64(0) AS total2
FROM {database}.lifecycle_changes
GROUP BY tenant_id, period, value;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_added_charges TO {database}.usage_counters AS
SELECT tenant_id, 'charge' AS kind, toDateTime(toStartOfHour(assumeNotNull(billed_at)), 'UTC') AS period,
       '' AS label, '' AS category,
       toInt64(if(reopened_at IS NULL, 0,
                  toYear(assumeNotNull(reopened_at)) * 100 + toMonth(assumeNotNull(reopened_at)))) AS value,
       toInt64(count()) AS n, toInt64(0) AS total, toInt64(0) AS total2
FROM {database}.lifecycle_changes WHERE billed_at IS NOT NULL
GROUP BY tenant_id, period, value;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_replaced_states TO {database}.usage_counters AS
SELECT tenant_id, 'state' AS kind, toDateTime(toStartOfHour(kept_created_at), 'UTC') AS period,
       toString(kept_state) AS label, toString(kept_category) AS category, toInt64(0) AS value,
       -toInt64(count()) AS n, -toInt64(sum(kept_csat_score)) AS total,
       -toInt64(countIf(kept_csat_score > 0)) AS total2
FROM {database}.lifecycle_changes WHERE kept_present
GROUP BY tenant_id, period, label, category;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_replaced_latencies TO {database}.usage_counters AS
SELECT tenant_id, 'latency' AS kind, toDateTime(toStartOfHour(kept_created_at), 'UTC') AS period, '' AS label,
       '' AS category, toInt64(kept_latency_ms) AS value, -toInt64(count()) AS n, toInt64(0) AS total,
       toInt64(0) AS total2
FROM {database}.lifecycle_changes WHERE kept_present
GROUP BY tenant_id, period, value;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.lifecycle_replaced_charges TO {database}.usage_counters AS
SELECT tenant_id, 'charge' AS kind, toDateTime(toStartOfHour(assumeNotNull(kept_billed_at)), 'UTC') AS period,
       '' AS label, '' AS category,
       toInt64(if(kept_reopened_at IS NULL, 0,
                  toYear(assumeNotNull(kept_reopened_at)) * 100 + toMonth(assumeNotNull(kept_reopened_at)))) AS value,
       -toInt64(count()) AS n, toInt64(0) AS total, toInt64(0) AS total2
FROM {database}.lifecycle_changes WHERE kept_present AND kept_billed_at IS NOT NULL
GROUP BY tenant_id, period, value
