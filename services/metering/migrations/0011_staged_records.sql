-- Where the sink stages a batch's Kafka records before they become rows (adapters/wire.py,
-- adapters/staged_sql.py): each record's fields as ClickHouse decoded them from protobuf, column names
-- matching the field names (a nested message's fields as `field.name`). Scratch: a batch's rows are
-- deleted once it is written, and a restart may drop them (Memory); `staged_by` is the sink process,
-- `staged_seq` the record's number in it.
CREATE TABLE IF NOT EXISTS {database}.staged_resolutions
(
    staged_by                    UInt64,
    staged_seq                   UInt64,
    resolution_id                String,
    tenant_id                    String,
    ticket_id                    String,
    decision                     Int32,
    reply                        String,
    adapter_version              String,
    `created_at.seconds`         Int64,
    `created_at.nanos`           Int32,
    latency_ms                   Int64,
    action                       String,
    confidence                   Float32,
    request_id                   String,
    category                     String,
    escalation_reason            String,
    `action_run.call`            String,
    `action_run.status`          Int32,
    `action_run.answer`          String,
    `action_run.latency_ms`      Int64,
    `action_run.idempotency_key` String,
    conversation Nested(role Int32, text String)
)
ENGINE = Memory;

CREATE TABLE IF NOT EXISTS {database}.staged_outcomes
(
    staged_by             UInt64,
    staged_seq            UInt64,
    event_id              String,
    resolution_id         String,
    tenant_id             String,
    ticket_id             String,
    kind                  Int32,
    csat_score            Int32,
    `occurred_at.seconds` Int64,
    `occurred_at.nanos`   Int32,
    category              String
)
ENGINE = Memory;
