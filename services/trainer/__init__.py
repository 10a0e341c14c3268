"""The trainer: per-tenant sample buffers, LoRA adapters on one shared base model, the versioned adapter
registry, champion/challenger promotion and the accuracy preview.

`domain/` is pure (buffer policy, holdout split, promotion rule, metrics); `adapters/` does the I/O
(the tiny base-model builder, peft training, registry, sample buffer, retrieval baseline);
`entrypoints/` wires them to Kafka and the CLI.
"""
