"""Ctrl-C (SIGINT) that third-party code can neither lose nor turn into a confusing error.

Python raises KeyboardInterrupt wherever the main thread happens to be. Inside an import or a model's
construction that goes wrong in two ways (measured on the scenes step, a SIGINT sent 0-1.4 s into its
model load): torch's import machinery swallows the exception and the step runs on to the end (exit 0), or
the import is left half-done and a later line fails with "partially initialized module ...". So a step's
process (:func:`vidflow.logs.run_main`) records every SIGINT; :func:`held` postpones the KeyboardInterrupt to
the end of such a block; :func:`check` raises it where a swallowed one must not go unnoticed (before an
output is published).
"""

import signal
from contextlib import contextmanager

_state = {"received": False, "held": 0}


def _on_sigint(signum, frame):  # noqa: ARG001 - signal handler signature
    _state["received"] = True
    if not _state["held"]:
        raise KeyboardInterrupt


def catch_ctrl_c():
    """Record every SIGINT from now on. A process that inherited SIGINT ignored (a background job of a
    non-interactive shell) keeps ignoring it, as Python itself does. Main thread only."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def received():
    """Whether a SIGINT came since :func:`catch_ctrl_c` (even one whose KeyboardInterrupt was swallowed)."""
    return _state["received"]


def check():
    """Raise KeyboardInterrupt if a SIGINT came (outside a :func:`held` block)."""
    if _state["received"] and not _state["held"]:
        raise KeyboardInterrupt


@contextmanager
def held():
    """Hold a Ctrl-C back until the block ends, then raise it: for imports and model loading."""
    _state["held"] += 1
    try:
        yield
    finally:
        _state["held"] -= 1
    check()
