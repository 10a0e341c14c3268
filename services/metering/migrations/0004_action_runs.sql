-- What the resolver's back-office call did, per resolution (resolver.proto ActionRun): the call's name,
-- its outcome (ok / failed / not_allowed / timed_out / malformed / not_configured; '' when the answer was
-- no call) and its latency. Rows written before actions existed read as no call.
ALTER TABLE {database}.resolution_events ADD COLUMN IF NOT EXISTS action_name LowCardinality(String) DEFAULT '';
ALTER TABLE {database}.resolution_events ADD COLUMN IF NOT EXISTS action_status LowCardinality(String) DEFAULT '';
ALTER TABLE {database}.resolution_events ADD COLUMN IF NOT EXISTS action_latency_ms UInt32 DEFAULT 0;
