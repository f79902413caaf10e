"""Logging set-up and the one-line error contract shared by all rule scripts."""

import logging
import sys
import traceback

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

    A :class:`UserError` is reported as ``ERROR: <file>: <reason>``, Ctrl-C as ``interrupted``. Anything else
    is a bug: its traceback goes to the log file only, and stderr gets one line.
    """
    log = logging.getLogger("vidflow")
    try:
        main(argv)
    except UserError as err:
        log.error("%s", err)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: one line, no traceback
        log.error("interrupted")
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - last-resort reporting
        if interrupted(err):  # e.g. Ctrl-C inside `import onnxruntime` surfaces as ImportError
            log.error("interrupted")
            sys.exit(130)
        for handler in logging.getLogger().handlers:
            if not isinstance(handler, logging.FileHandler):
                continue
            handler.stream.write(traceback.format_exc())
            handler.flush()
        log.error("unexpected %s: %s (traceback in the rule's log)", type(err).__name__, err)
        sys.exit(1)
