"""Optional run notifications: POST a short JSON to a webhook (standard library only, never raises)."""

import json
import logging
import urllib.error
import urllib.request

log = logging.getLogger("vidflow.notify")


def run_payload(status, projects, workdir, message=""):
    """The JSON a webhook gets: ``status`` is ``success`` or ``error``; ``message`` is cut to 2000 characters."""
    return {"workflow": "video-analysis", "status": status, "projects": sorted(projects), "workdir": str(workdir),
            "message": str(message)[-2000:]}


def notify(url, payload, timeout=5.0):
    """POST ``payload`` as JSON to ``url``. Returns True on a 2xx answer; logs and returns False on anything else.

    An empty ``url`` does nothing (notifications off). Never raises: a notification must not fail a run.
    """
    if not url:
        return False
    data = json.dumps(payload, sort_keys=True).encode("utf-8")
    try:
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "vidflow-notify"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as err:
        log.warning("notification to %s failed: %s", url, getattr(err, "reason", err))
        return False
    if not ok:
        log.warning("notification to %s: HTTP %s", url, response.status)
    return ok
