"""Logging set-up and the one-line error contract shared by all rule scripts."""

import logging
import signal
import sys
import traceback

from . import interrupt
from .errors import UserError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_path=None, level=logging.INFO):
    """Log everything to the rule's log file; warnings and errors also to stderr.

    Without a log file, everything goes to stderr.
    """
    console = logging.StreamHandler(sys.stderr)
    handlers = [console]
    if log_path:
        console.setLevel(logging.WARNING)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    # torch's own INFO lines are not the step's (at exit, after an interrupted model load, it logs its FakeTensor
    # cache statistics below the step's last line)
    logging.getLogger("torch").setLevel(max(level, logging.WARNING))


def interrupted(err):
    """True when a KeyboardInterrupt is among the causes of ``err`` (raised ``from`` it or while handling it)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def run_main(main, argv=None):
    """Run ``main(argv)`` and turn failures into one clear line and exit status 1.

    A :class:`UserError` is reported as ``ERROR: <file>: <reason>``. Ctrl-C is ``interrupted`` (exit 130),
    whatever it caused on its way (see :mod:`vidflow.interrupt`): an error, or nothing at all because a library
    swallowed it. Anything else is a bug: its traceback goes to the log file only, and stderr gets one line.
    """
    log = logging.getLogger("vidflow")
    interrupt.catch_ctrl_c()
    stopped = False
    try:
        main(argv)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: one line, no traceback
        stopped = True
    except UserError as err:
        if not interrupt.received():  # e.g. "ffmpeg failed" because ffmpeg got the same Ctrl-C
            log.error("%s", err)
            sys.exit(1)
    except Exception as err:  # noqa: BLE001 - last-resort reporting
        stopped = interrupted(err)  # e.g. Ctrl-C inside an import surfaces as ImportError
        if not (stopped or interrupt.received()):
            _traceback_to_log()
            log.error("unexpected %s: %s (traceback in the rule's log)", type(err).__name__, err)
            sys.exit(1)
    if stopped or interrupt.received():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this line short
        log.error("interrupted")
        sys.exit(130)


def _traceback_to_log():
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.stream.write(traceback.format_exc())
            handler.flush()
