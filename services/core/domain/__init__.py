"""The shared package's pure modules: formats, rules and ids every service agrees on (no I/O; only the
standard library and the protos)."""
