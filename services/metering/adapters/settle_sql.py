"""The lifecycle fold of domain/lifecycle.py (`settle`) in ClickHouse SQL, for settling a batch where its
rows are: one statement settles every resolution a batch touched, instead of reading their histories
back into Python and writing the lifecycles out again.

`domain/lifecycle.py` stays the definition; tests/metering/test_settle_sql.py holds this fold equal to
it on random histories. The fold is `arrayFold` over a resolution's outcome events in event time, with
one synthetic event at the end of its quiet window (ordered after the events at that very moment): the
Python fold assumes a pending resolution just before the first event past the window, or at the end when
the watermark reached it, and the synthetic event is that moment.

Its accumulator: (state code, state_at ms, billed_at ms or -1, reopened_at ms or -1, decided_by, latest
rating, customer returned).
"""

from __future__ import annotations

from typing import Mapping

from clonedesk.metering.domain.lifecycle import State
from clonedesk.metering.domain.terms import Terms

# State codes in the fold; the names are what the table stores.
STATE_CODES = {State.PENDING: 0, State.CONFIRMED: 1, State.ASSUMED: 2, State.ESCALATED: 3, State.REOPENED: 4}
_NAMES = "[" + ", ".join(f"'{state.value}'" for state in sorted(STATE_CODES, key=STATE_CODES.get)) + "]"
_P, _C, _A, _E, _R = (STATE_CODES[s] for s in (State.PENDING, State.CONFIRMED, State.ASSUMED, State.ESCALATED,
                                              State.REOPENED))
_ACC = "Tuple(UInt8, Int64, Int64, Int64, String, UInt8, UInt8)"


def _acc(state="a.1", state_at="a.2", billed="a.3", reopened="a.4", decided="a.5", rating="a.6",
         returned="a.7") -> str:
    return f"CAST(({state}, {state_at}, {billed}, {reopened}, {decided}, {rating}, {returned}) AS {_ACC})"


# x: (at ms, 1 for the window's end else 0, event id, kind, score). The rating is taken before the rest.
_RATING = "if(x.4 = 'csat' AND x.5 > 0, x.5, a.6)"
_POSITIVE = "(x.4 = 'csat' AND x.5 >= 4)"
_NEGATIVE = "(x.4 = 'csat' AND x.5 > 0 AND x.5 < 4)"
_STEP = f"""(a, x) -> if(x.2 = 1,
    if(a.1 = {_P} AND a.7 = 0 AND wm >= deadline,
       {_acc(_A, 'deadline', 'if(bill_assumed, deadline, -1)', decided='resolution_id')}, a),
  if(a.1 = {_P},
    if(x.4 = 'customer_confirmed' OR {_POSITIVE}, {_acc(_C, 'x.1', 'x.1', decided='x.3', rating=_RATING)},
    if(x.4 = 'human_took_over', {_acc(_E, 'x.1', decided='x.3', rating=_RATING)},
    if(x.4 IN ('customer_replied', 'reopened') OR {_NEGATIVE}, {_acc(rating=_RATING, returned='1')},
       {_acc(rating=_RATING)}))),
  if(a.1 IN ({_C}, {_A}) AND (x.4 = 'reopened' OR (a.1 = {_A} AND x.4 = 'customer_replied'))
     AND x.1 <= a.2 + reopen_ms,
     {_acc(_R, 'x.1', reopened='x.1', decided='x.3', rating=_RATING)},
     {_acc(rating=_RATING)})))"""


def _ms(column: str) -> str:
    return f"if({column} < 0, NULL, fromUnixTimestamp64Milli({column}, 'UTC'))"


def keys_of(batch_param: str = "b", replied: int | None = None) -> str:
    """The batch's resolution keys, as a subquery; `replied` 1: those it brings a reply of, 0: the rest
    (an outcome of theirs, or a quiet window closed)."""
    only = "" if replied is None else f" AND replied = {int(replied)}"
    return f"(SELECT tenant_id, resolution_id FROM {{db}}.settle_keys WHERE batch_id = %({batch_param})s{only})"


def terms_parameters(terms: Mapping[str, Terms]) -> dict:
    """The tenants' terms as the fold reads them: parallel arrays, by tenant."""
    tenants = sorted(terms)
    return {"terms_tenants": tenants,
            "assumed_ms": [int(terms[t].assumed_window.total_seconds() * 1000) for t in tenants],
            "reopen_ms": [int(terms[t].reopen_window.total_seconds() * 1000) for t in tenants],
            "bill_assumed": [1 if terms[t].bill_assumed else 0 for t in tenants]}


def _term(name: str) -> str:
    return f"transform(tenant_id, %(terms_tenants)s, %({name})s, toInt64(-1))"


# A resolution's fold, over the columns its query gives it: decision, created_ms, resolution_id, the
# terms (_TERMS), its outcome events (_EVENTS) and the watermark `wm` (all epoch ms).
_TERMS = (f"created_ms + {_term('assumed_ms')} AS deadline, {_term('reopen_ms')} AS reopen_ms, "
          f"{_term('bill_assumed')} = 1 AS bill_assumed")
_EVENTS = ("groupArray((toUnixTimestamp64Milli(occurred_at), event_id, toString(kind), csat_score,"
           " toString(category))) AS events")
_FOLDED = f"""arrayFold({_STEP},
                        arraySort(x -> (x.1, x.2, x.3),
                                  arrayConcat(arrayMap(e -> (e.1, toUInt8(0), e.2, e.3, e.4), events),
                                              [(deadline, toUInt8(1), '', '', toUInt8(0))])),
                        {_acc(f"if(decision = 'escalate', {_E}, {_P})", 'created_ms', '-1', '-1',
                              'resolution_id', '0', "decision = 'ask'")}) AS folded"""

LIFECYCLE_OUT = ["tenant_id", "resolution_id", "ticket_id", "state", "created_at", "state_at", "billed_at",
                 "reopened_at", "decided_by", "csat_score", "category", "latency_ms", "decision", "version",
                 "assumable_at"]

# Every resolution of the batch (`settle_keys`) with a reply: its lifecycle from its stored events, the
# tenant's watermark and terms; written where it differs from the stored one, unless the stored one was
# settled on more knowledge (a higher version: the newest knowledge wins). Written as a change beside
# the lifecycle it replaces: migration 0009's views store it and move its counters (and 0010's counts
# the states it moved, by batch).
_KEPT = ["present", "state", "created_at", "billed_at", "reopened_at", "csat_score", "category", "latency_ms"]

SETTLE = f"""
INSERT INTO {{db}}.lifecycle_changes ({', '.join(LIFECYCLE_OUT)}, {', '.join('kept_' + c for c in _KEPT)},
                                   batch_id)
SELECT tenant_id, resolution_id, {', '.join('settled.' + c for c in LIFECYCLE_OUT[2:])},
       {', '.join('kept.' + c for c in _KEPT)}, %(b)s FROM (
  SELECT tenant_id, resolution_id, ticket_id, {_NAMES}[folded.1 + 1] AS state,
         fromUnixTimestamp64Milli(created_ms, 'UTC') AS created_at,
         fromUnixTimestamp64Milli(folded.2, 'UTC') AS state_at,
         {_ms('folded.3')} AS billed_at, {_ms('folded.4')} AS reopened_at, folded.5 AS decided_by,
         folded.6 AS csat_score,
         if(reply_category != '', reply_category,
            arrayFirst(c -> c != '', arrayMap(e -> e.5, arraySort(e -> (e.1, e.2), events)))) AS category,
         latency_ms, decision,
         toUInt64(greatest(wm, created_ms)) * 1024 + least(length(events) + 1, 1023) AS version,
         if(folded.1 = {_P} AND folded.7 = 0, fromUnixTimestamp64Milli(deadline, 'UTC'), NULL) AS assumable_at
  FROM (
    SELECT *, {_FOLDED}
    FROM (
      SELECT tenant_id, resolution_id, ticket_id, toString(decision) AS decision,
             toUnixTimestamp64Milli(created_at) AS created_ms, latency_ms,
             toString(category) AS reply_category,
             {_TERMS}
      FROM {{db}}.resolution_events FINAL WHERE (tenant_id, resolution_id) IN {keys_of()}
    ) AS reply
    LEFT JOIN (
      SELECT tenant_id, resolution_id, {_EVENTS}
      FROM {{db}}.outcome_events FINAL WHERE (tenant_id, resolution_id) IN {keys_of()}
      GROUP BY tenant_id, resolution_id
    ) AS outcome USING (tenant_id, resolution_id)
    LEFT JOIN (
      SELECT tenant_id, toUnixTimestamp64Milli(max(watermark)) AS wm FROM {{db}}.tenant_watermarks
      WHERE tenant_id IN %(terms_tenants)s GROUP BY tenant_id
    ) AS mark USING (tenant_id)
  )
) AS settled
LEFT JOIN (
  SELECT {', '.join(LIFECYCLE_OUT)}, 1 AS present FROM {{db}}.resolution_lifecycles FINAL
  WHERE (tenant_id, resolution_id) IN {keys_of()}
) AS kept USING (tenant_id, resolution_id)
WHERE NOT kept.present
   OR (kept.version <= settled.version
       AND NOT ({' AND '.join(f'isNotDistinctFrom(settled.{c}, kept.{c})' for c in LIFECYCLE_OUT[2:])}))
SETTINGS join_use_nulls = 0, optimize_on_insert = 0, parallel_view_processing = 1
"""

# The pending resolutions of the batch's tenants whose quiet window the watermark has closed: settled
# with the batch, though no event of theirs came.
STAGE_DUE = """
INSERT INTO {db}.settle_keys (batch_id, tenant_id, resolution_id)
SELECT %(b)s, tenant_id, resolution_id FROM (
  SELECT tenant_id, resolution_id, assumable_at FROM {db}.resolution_lifecycles FINAL
  WHERE tenant_id IN %(terms_tenants)s AND state = 'pending'
) AS pending
INNER JOIN (
  SELECT tenant_id, max(watermark) AS wm FROM {db}.tenant_watermarks
  WHERE tenant_id IN %(terms_tenants)s GROUP BY tenant_id
) AS mark USING (tenant_id)
WHERE assumable_at <= wm
"""


# The copies already stored of what the batch brings (the counters' part of raw events moves by what the
# batch's copies change: domain/counters.py raw_events_change). A stored outcome other than a CSAT adds
# nothing, so only those are read.
STORED_REPLIES = f"""
SELECT tenant_id, resolution_id, created_at, toString(action_status), action_latency_ms
FROM {{db}}.resolution_events FINAL WHERE (tenant_id, resolution_id) IN {keys_of(replied=1)}
"""
STORED_CSAT = f"""
SELECT tenant_id, resolution_id, event_id, csat_score, occurred_at FROM (
  SELECT tenant_id, resolution_id, event_id, kind, csat_score, occurred_at FROM {{db}}.outcome_events FINAL
  WHERE (tenant_id, resolution_id) IN {keys_of()}
) WHERE kind = 'csat'
"""


# What the batch's settling moved into each state (migration 0010's view counted it as it wrote).
BATCH_STATES = """
SELECT tenant_id, state, sum(n) FROM {db}.batch_states WHERE batch_id = %(b)s GROUP BY tenant_id, state
"""


# How many of a tenant's resolutions created in a month (by their kept reply) were in each state when the
# month ended, by state code: each folded on its events before the month's end with the watermark at it
# (domain/statements.py counts_at_month_end; a closing statement's counts).
_OF_MONTH = ("tenant_id = %(t)s AND created_at >= fromUnixTimestamp64Milli(%(start)s, 'UTC')"
             " AND created_at < fromUnixTimestamp64Milli(%(end)s, 'UTC')")
MONTH_END_STATES = f"""
SELECT folded.1 AS code, count() FROM (
  SELECT *, {_FOLDED}
  FROM (
    SELECT tenant_id, resolution_id, toString(decision) AS decision,
           toUnixTimestamp64Milli(created_at) AS created_ms, {_TERMS}, toInt64(%(end)s) AS wm
    FROM {{db}}.resolution_events FINAL WHERE {_OF_MONTH}
  ) AS reply
  LEFT JOIN (
    SELECT tenant_id, resolution_id, {_EVENTS}
    FROM {{db}}.outcome_events FINAL
    WHERE tenant_id = %(t)s AND occurred_at < fromUnixTimestamp64Milli(%(end)s, 'UTC')
      AND resolution_id IN (SELECT resolution_id FROM {{db}}.resolution_events WHERE {_OF_MONTH})
    GROUP BY tenant_id, resolution_id
  ) AS outcome USING (tenant_id, resolution_id)
)
GROUP BY code
SETTINGS join_use_nulls = 0
"""
