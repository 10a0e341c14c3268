-- What the AI was asked and answered, kept with each resolution as the evidence of its charge (the
-- evidence endpoint): the conversation (JSON [{role, text}], PII-scrubbed upstream), the reply, the
-- call and the back office's answer, and why it was escalated. Rows written before read as empty.
ALTER TABLE {database}.resolution_events ADD COLUMN IF NOT EXISTS conversation String DEFAULT '';
ALTER TABLE {database}.resolution_events ADD COLUMN IF NOT EXISTS reply String DEFAULT '';
ALTER TABLE {database}.resolution_events ADD COLUMN IF NOT EXISTS action String DEFAULT '';
ALTER TABLE {database}.resolution_events ADD COLUMN IF NOT EXISTS action_answer String DEFAULT '';
ALTER TABLE {database}.resolution_events ADD COLUMN IF NOT EXISTS escalation_reason String DEFAULT '';
