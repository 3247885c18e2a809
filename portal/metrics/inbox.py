"""The inbox folder: files dropped into INBOX_DIR/<kind>/ are imported by the scheduler.

Each file is claimed by renaming it into `processing/` (a rename succeeds for one process only),
imported, then moved to `done/` or `failed/` with its report beside it. Files still being
written (recently modified, or named *.part / *.tmp / .*) are left for the next run.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from flask import current_app
from flask_babel import force_locale

from portal.extensions import db
from portal.metrics.ingest import KINDS, report_lines, run_import

SETTLE_SECONDS = 10  # a file unchanged this long is complete


def _ready(path: Path, now: float) -> bool:
    name = path.name
    if name.startswith(".") or name.endswith((".part", ".tmp", ".report.txt")):
        return False
    return path.is_file() and now - path.stat().st_mtime >= SETTLE_SECONDS


def _claim(path: Path) -> Path | None:
    processing = path.parent / "processing"
    processing.mkdir(exist_ok=True)
    target = processing / path.name
    try:
        os.rename(path, target)  # atomic: a second scheduler loses the race
    except (FileNotFoundError, FileExistsError):
        return None
    return target


def _finish(claimed: Path, outcome: str, report: str) -> Path:
    folder = claimed.parent.parent / outcome
    folder.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = folder / f"{stamp}-{claimed.name}"
    os.rename(claimed, target)
    target.with_name(target.name + ".report.txt").write_text(report, encoding="utf-8")
    return target


def import_inbox(now: datetime) -> str:
    """Import every settled file of the inbox; returns a one-line summary."""
    root = Path(current_app.config["INBOX_DIR"])
    done = failed = 0
    clock = time.time()
    for kind in KINDS:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.iterdir()):
            if not _ready(path, clock):
                continue
            claimed = _claim(path)
            if claimed is None:
                continue
            try:
                with claimed.open("rb") as stream, force_locale("en"):
                    record = run_import(kind, stream, filename=path.name, door="inbox")
                db.session.commit()
            except Exception as exc:  # never leave a file stuck in processing/
                db.session.rollback()
                _finish(claimed, "failed", f"{path.name}: the import failed: {exc}\n")
                failed += 1
                continue
            lines = list(report_lines(record))
            lines += [f"Row {n}: {reason}" for n, reason in record.rejections or []]
            if record.message:
                lines.append(record.message)
            ok = record.status == "committed"
            _finish(claimed, "done" if ok else "failed", "\n".join(lines) + "\n")
            done, failed = done + ok, failed + (not ok)
    return f"{done} file(s) imported, {failed} refused"
