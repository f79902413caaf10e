"""Step 5: face tracking (engines, stable track ids, streamed output). See :mod:`steps.tracking.pipeline`."""
