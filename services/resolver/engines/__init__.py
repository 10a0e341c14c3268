"""Inference engines behind one small interface (`base.Engine`): `hf` (transformers + peft) and `vllm`."""
