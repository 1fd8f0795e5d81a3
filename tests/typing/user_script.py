"""A library user's script: mypy (strict, and no expression of type Any allowed) checks it
in CI, so the public names stay typed. Never run by pytest (it needs a live API)."""

from __future__ import annotations

from pathlib import Path

import resumer


def crawl_and_read(job_file: Path, db: Path) -> tuple[int, list[str], str, int]:
    job: resumer.Job = resumer.load_job(job_file)
    outcome: resumer.Outcome = resumer.run(job, db)
    again: resumer.Outcome = resumer.resume(db)
    paths = [node.path for node in resumer.export(db, level=2) if node.status == "complete"]
    status: resumer.JobStatus = resumer.status(db)
    complete: int = status.totals["complete"]
    return outcome.exit_status + again.exit_status, paths, status.state, complete


def built_in_code() -> resumer.Job:
    return resumer.job_from_dict(
        {"source": {"url": "http://127.0.0.1:8808/features"}, "request": {"url": "x"}}
    )


def what_changed(old: Path, new: Path) -> list[tuple[str, int, str, list[str]]]:
    """Two nights' crawls compared, an updatedAt field left out."""
    changes: list[resumer.Change] = list(
        resumer.diff(old, new, level=3, ignore=["payload.updatedAt"], partial=False)
    )
    out = []
    for change in changes:
        name = change.after.name if change.after is not None else "(removed)"
        out.append((change.change, change.level, "/".join(change.path), [name, *change.fields]))
    return out
