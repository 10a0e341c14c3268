"""The trainer's use cases: one training run of a tenant, from its buffered samples to a promoted or rejected
version (training_run.py)."""
