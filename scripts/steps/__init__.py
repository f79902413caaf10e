"""Logic of each workflow step, one module per step (imported by the thin scripts and by tests)."""
