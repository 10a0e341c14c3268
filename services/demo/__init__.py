"""`clonedesk demo`: the whole product loop on the embedded stack, on real SGD dialogues.

`domain/` holds the pure parts (how each business's dialogues are split, the webhook payloads a
helpdesk would send, the customer-reaction script, the report figures); `adapters/` the HTTP and Kafka
clients the demo drives the stack with; `run.py` the steps themselves. `clonedesk.stack.demo.run_demo`
is the entry point the CLI calls.
"""
