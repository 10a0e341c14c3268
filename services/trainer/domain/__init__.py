"""The trainer's pure core: no I/O, unit-tested with plain data."""
