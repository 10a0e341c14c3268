"""The trainer's I/O: base model, peft training, registry on disk, sample buffer, retrieval baseline."""
