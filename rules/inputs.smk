# Inputs: the projects of the input folder, links from config `sources` (downloaded by rules/download.smk),
# and the extraction checkpoints' manifests (the videos of a project are known only after extraction).
from snakemake.logging import logger

from steps.download import link_id, manual_reason, read_sources, url_filename
from vidflow.errors import UserError
from vidflow.inputs import discover_projects, video_record
from vidflow.io import read_json
from vidflow.naming import archive_stem, unique_slugs

DOWNLOAD_DIR = config["download"]["dir"]
LINKS, MANUAL_LINKS = {}, []
try:
    PROJECTS = discover_projects(
        config["input_dir"], config["extract"]["video_extensions"]
    )
    for link in read_sources(config["sources"]) if config["sources"] else []:
        if manual_reason(link["url"]):
            logger.warning(f"{link['url']}: {manual_reason(link['url'])}; skipped")
            MANUAL_LINKS.append(link["url"])
        else:
            LINKS[link_id(link["url"])] = link
except UserError as err:
    raise WorkflowError(str(err)) from None
# Each link is a project named after its file (made unique against the input folder's projects).
_names = [
    archive_stem(url_filename(link["url"])) or url_filename(link["url"])
    for link in LINKS.values()
]
for _slug, _link in zip(unique_slugs([*PROJECTS, *_names])[len(PROJECTS) :], LINKS):
    PROJECTS[_slug] = {"download": _link}


# downloads_table's settings: the download jobs of the links, and the links that need a browser.
DOWNLOADS_TABLE = {
    "links": {link: LINKS[link]["url"] for link in sorted(LINKS)},
    "manual": MANUAL_LINKS,
    "download_dir": DOWNLOAD_DIR,
    "logs_dir": "logs",
}


def download_status(link):
    return Path(checkpoints.download.get(link=link).output["folder"]) / "status.json"


def earlier_links(link):
    """The links listed before ``link`` in ``sources`` (the first of identical contents is processed)."""
    order = list(LINKS)
    return order[: order.index(link)]


def extract_source(wildcards):
    """The extraction job's named inputs: ``archive``, ``loose`` (videos) or ``download`` (its status.json) with
    ``earlier`` (the status.json of the links listed before it)."""
    source = PROJECTS[wildcards.project]
    if "download" in source:
        link = source["download"]
        return {
            "download": download_status(link),
            "earlier": [download_status(l) for l in earlier_links(link)],
        }
    if "archive" in source:
        return {"archive": source["archive"]}
    return {"loose": source["loose"]}


def manifest_path(project):
    """The extraction manifest of ``project`` (waits for the checkpoint)."""
    folder = checkpoints.extract.get(project=project).output["extracted"]
    return str(Path(folder) / "manifest.json")


def project_manifest(wildcards):
    """Input function: the extraction manifest of the job's project."""
    return manifest_path(wildcards.project)


def manifest(project):
    """The extraction manifest of ``project``, read (waits for the checkpoint)."""
    return read_json(manifest_path(project))


def extracted_project(wildcards):
    """No file: waits for the project's extraction only (a job that takes the manifest itself would rerun
    whenever any video of the project is added or removed)."""
    checkpoints.extract.get(project=wildcards.project)
    return []


def video_source_settings(wildcards):
    """The video_source job's settings: the video's record, out of its project's manifest."""
    try:
        return {"record": video_record(manifest(wildcards.project), wildcards.video)}
    except UserError as err:
        raise WorkflowError(str(err)) from None


def source_video(wildcards):
    for entry in manifest(wildcards.project)["videos"]:
        if entry["video"] == wildcards.video:
            return entry["path"]
    raise WorkflowError(
        f"video {wildcards.video!r} is not in project {wildcards.project!r}"
    )
