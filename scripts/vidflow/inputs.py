"""Find the projects in the input folder: one per archive, plus ``_loose`` for loose videos."""

from pathlib import Path

from .errors import UserError
from .naming import archive_stem, unique_slugs

LOOSE_PROJECT = "_loose"


def discover_projects(input_dir, video_extensions):
    """Map project slug -> ``{"archive": path}`` or ``{"loose": [paths]}``.

    Only the top level of ``input_dir`` is scanned; hidden files are ignored.
    Archive stems are slugged and made unique in name order.
    """
    folder = Path(input_dir)
    if not folder.is_dir():
        raise UserError(input_dir, "input_dir does not exist or is not a folder (set input_dir in the config)")
    extensions = {e.lower() for e in video_extensions}
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    archives = [p for p in files if archive_stem(p.name)]
    loose = [p for p in files if p.suffix.lower() in extensions and not archive_stem(p.name)]
    projects = {slug: {"archive": str(p)} for slug, p in
                zip(unique_slugs([archive_stem(p.name) for p in archives], "archive"), archives)}
    if loose:
        projects[LOOSE_PROJECT] = {"loose": [str(p) for p in loose]}
    return projects


RECORD_KEYS = ("video", "original_name", "member", "sha256", "bytes", "duration")


def video_record(manifest, video):
    """One video's record (``results/{project}/{video}/source.json``): its manifest entry and where it came from.

    Each video's jobs read only this, so adding or removing another video of the project changes nothing of theirs.
    The extracted file's ``path`` is left out: it is the input of conversion, not provenance.
    """
    entry = next((v for v in manifest["videos"] if v["video"] == video), None)
    if entry is None:
        raise UserError(video, f"not in the manifest of project {manifest['project']!r}")
    return {"project": manifest["project"], "source": manifest["source"], **{k: entry[k] for k in RECORD_KEYS}}
