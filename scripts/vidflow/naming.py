"""Slugs for project and video names: ``[A-Za-z0-9._-]`` only, stable and unique."""

import re
import unicodedata
from pathlib import PurePosixPath

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Multi-part archive suffixes first, so "a.tar.gz" has the stem "a".
ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".tar", ".zip", ".rar", ".7z")


def slugify(name, fallback="video"):
    """Turn any name into ``[A-Za-z0-9._-]+``: accents folded, other runs -> ``_``.

    Leading dots and dashes are dropped (no hidden files, no option-like names).
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE.sub("_", folded).strip("_").lstrip(".-")
    slug = re.sub(r"_{2,}", "_", slug)
    return slug or fallback


def archive_stem(filename):
    """File name without its archive suffix (``talks.tar.gz`` -> ``talks``), or None if not an archive."""
    lower = filename.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return None


def video_stem(member_path):
    """Stem of the last component of an archive member path or file name."""
    return PurePosixPath(member_path.replace("\\", "/")).stem


def unique_slugs(names, fallback="video"):
    """Slug every name, making clashes unique with ``_2``, ``_3``... in input order.

    Clashes are compared case-insensitively, so outputs stay distinct on
    case-insensitive file systems. Returns a list parallel to ``names``.
    """
    taken = set()
    slugs = []
    for name in names:
        base = slugify(name, fallback)
        slug, n = base, 1
        while slug.casefold() in taken:
            n += 1
            slug = f"{base}_{n}"
        taken.add(slug.casefold())
        slugs.append(slug)
    return slugs
