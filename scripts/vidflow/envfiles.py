"""Read the env files (``envs/<name>.yaml``): their pins and the digest that names a built venv.

Standard library only: the workflow, the rules' scripts and tools/build_env.py (which runs before any venv
exists) all read env files with it.
"""

import hashlib
import json
from pathlib import Path

NODEPS_MARK = "#   - "


def read_env(path):
    """Parse the env-file subset we use: ``dependencies`` with ``name=ver`` and a ``pip`` list.

    Returns ``{"name", "channels", "conda": {name: version}, "pip": [...], "nodeps": [...]}``.
    ``nodeps`` are pins that must be installed with ``pip --no-deps`` (their declared
    dependencies conflict or are obsolete). They sit in comment lines ``#   - pkg==ver``
    after the pip list, so conda ignores them; under conda the env's
    ``<name>.post-deploy.sh`` installs them, and a test checks both lists agree.
    Raises ValueError on anything outside that subset (a test checks it agrees with PyYAML).
    """
    env = {"name": Path(path).stem, "channels": [], "conda": {}, "pip": [], "nodeps": []}
    section = None
    for lineno, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if raw.startswith(NODEPS_MARK):
            env["nodeps"].append(raw[len(NODEPS_MARK):].strip())
            continue
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent, text = len(line) - len(line.lstrip()), line.strip()
        if indent == 0:
            if text not in ("channels:", "dependencies:"):
                raise ValueError(f"{path}:{lineno}: unexpected top-level key {text!r}")
            section = text[:-1]
        elif text == "- pip:" and section == "dependencies":
            section = "pip"
        elif text.startswith("- ") and section == "channels":
            env["channels"].append(text[2:].strip())
        elif text.startswith("- ") and section == "dependencies":
            name, _, version = text[2:].strip().partition("=")
            env["conda"][name.strip()] = version.strip()
        elif text.startswith("- ") and section == "pip":
            env["pip"].append(text[2:].strip())
        else:
            raise ValueError(f"{path}:{lineno}: cannot parse {raw!r}")
    return env


def pins_digest(env):
    text = json.dumps({"python": env["conda"].get("python"), "pip": env["pip"], "nodeps": env["nodeps"]},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
