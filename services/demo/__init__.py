"""`clonedesk demo`: the whole product loop on the embedded stack, on real SGD dialogues.

`domain/` holds the pure parts (how each business's dialogues are split, the webhook payloads a
helpdesk would send, the customer-reaction script, the report figures); `adapters/` the HTTP and Kafka
clients and the product's public commands the demo drives the stack with; `run.py` the steps
themselves, `modes.py` the quick and full runs' sizes and tuning, `tables.py` the tables of what
happened; `cli.py` the `demo` command. The demo uses only what an operator or a helpdesk could: the
commands, the HTTP APIs, the topics and the shared package (`clonedesk.core`).
"""
