-- Invoices and usage filter one tenant's rows by event time: min/max indexes let them skip granules.
ALTER TABLE {database}.resolution_lifecycles ADD INDEX IF NOT EXISTS created_at_minmax created_at
    TYPE minmax GRANULARITY 4;
ALTER TABLE {database}.resolution_lifecycles ADD INDEX IF NOT EXISTS billed_at_minmax billed_at
    TYPE minmax GRANULARITY 4;
ALTER TABLE {database}.outcome_events ADD INDEX IF NOT EXISTS occurred_at_minmax occurred_at
    TYPE minmax GRANULARITY 4;
