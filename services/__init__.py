"""CloneDesk: helpdesk tickets answered by a per-tenant LoRA adapter learned from resolved tickets."""

__version__ = "0.1.0"
