# Helpers of the review report's rules (rules/report.smk): report items and the inputs that wait for every video.


def video_report_item(name, category, figure):
    return report(
        f"results/{{project}}/{{video}}/report/{name}",
        caption=f"../reports/{name.split('.')[0]}.rst",
        category=category,
        subcategory="{project}",
        labels={"project": "{project}", "video": "{video}", "figure": figure},
    )


def run_report_item(path, name, figure):
    return report(
        path,
        caption=f"../reports/{name}.rst",
        category="Run",
        labels={"project": "all", "video": "all", "figure": figure},
    )


def video_summaries(wildcards):
    """The report summary of every video of every project (waits for each extraction)."""
    return [
        f"results/{project}/{entry['video']}/report/summary.json"
        for project in sorted(PROJECTS)
        for entry in manifest(project)["videos"]
    ]


def project_manifests(wildcards):
    return [manifest_path(p) for p in sorted(PROJECTS)]


def transcript_input(wildcards):
    """The timeline shows the transcript's words when transcribe runs."""
    if not config["transcribe"]["enabled"]:
        return {}
    return {
        "transcript": f"results/{wildcards.project}/{wildcards.video}/transcript.json"
    }
