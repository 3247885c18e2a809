"""The inbox folder: files dropped into INBOX_DIR/<kind>/ are imported by the scheduler.

Each file is claimed by locking it and renaming it into `processing/` (one process wins),
imported, then moved to `done/` or `failed/` with its report beside it. Files still being
written (recently modified, or named *.part / *.tmp / .*) are left for the next run.

The lock (flock) is held while the file is imported, and the system drops it when the
process ends, however it ends. A file in `processing/` that nobody holds was being imported
by a scheduler that stopped (a restart, a crash): nothing of it was stored (an import is one
transaction), so it goes back to the inbox for one more try; interrupted a second time, it is
moved to `failed/` with a report saying so, rather than tried forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from datetime import datetime
from pathlib import Path

from flask import current_app
from flask_babel import force_locale

from portal.extensions import db
from portal.metrics.ingest import KINDS, rejection_lines, report_lines, run_import
from portal.metrics.messages import shown

SETTLE_SECONDS = 10  # a file unchanged this long is complete


def _ready(path: Path, now: float) -> bool:
    name = path.name
    if name.startswith(".") or name.endswith((".part", ".tmp", ".report.txt")):
        return False
    return path.is_file() and now - path.stat().st_mtime >= SETTLE_SECONDS


def _locked(path: Path):
    """The file opened and locked for this process, or None if another process holds it (or
    it is gone). The lock lasts until the returned file is closed, or the process ends."""
    try:
        held = path.open("rb")
    except OSError:
        return None
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        held.close()
        return None
    return held


def _claim(path: Path):
    """Lock the file, then move it into processing/: (its new path, the locked file), or None
    if another process has it. Locking first means no other process ever sees it in
    processing/ unlocked while this one is at work."""
    held = _locked(path)
    if held is None:
        return None
    processing = path.parent / "processing"
    processing.mkdir(exist_ok=True)
    target = processing / path.name
    try:
        os.rename(path, target)  # a process that locked it after this one moved it, loses
    except OSError:
        held.close()
        return None
    return target, held


def _interrupted_marker(claimed: Path) -> Path:
    return claimed.with_name(f".{claimed.name}.interrupted")


def _recover(folder: Path) -> int:
    """Files left in processing/ by a scheduler that stopped: back into the inbox once,
    to failed/ the second time. Returns how many went to failed/."""
    processing = folder / "processing"
    if not processing.is_dir():
        return 0
    failed = 0
    for path in sorted(processing.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        held = _locked(path)
        if held is None:
            continue  # being imported right now
        with held:
            marker = _interrupted_marker(path)
            if marker.exists():
                marker.unlink()
                _finish(
                    path,
                    "failed",
                    f"{path.name}: the import was interrupted twice (the scheduler stopped "
                    "while importing it); nothing of it was stored. Put it back into the "
                    "inbox folder to try again.\n",
                )
                failed += 1
            else:
                marker.touch()
                with contextlib.suppress(OSError):
                    os.rename(path, folder / path.name)
    return failed


def _finish(claimed: Path, outcome: str, report: str) -> Path:
    folder = claimed.parent.parent / outcome
    folder.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = folder / f"{stamp}-{claimed.name}"
    os.rename(claimed, target)
    target.with_name(target.name + ".report.txt").write_text(report, encoding="utf-8")
    _interrupted_marker(claimed).unlink(missing_ok=True)
    return target


def import_inbox(now: datetime) -> str:
    """Import every settled file of the inbox; returns a one-line summary."""
    root = Path(current_app.config["INBOX_DIR"])
    done = failed = 0
    clock = time.time()
    for kind in KINDS:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        failed += _recover(folder)
        for path in sorted(folder.iterdir()):
            if not _ready(path, clock):
                continue
            claim = _claim(path)
            if claim is None:
                continue
            claimed, held = claim
            with held:  # filed while still locked: no other process takes it for abandoned
                ok = _import_one(kind, claimed, path.name)
            done, failed = done + ok, failed + (not ok)
    return f"{done} file(s) imported, {failed} refused"


def _import_one(kind: str, claimed: Path, name: str) -> bool:
    """Import a claimed file and file it with its report; whether it was imported."""
    try:
        with claimed.open("rb") as stream, force_locale("en"):
            record = run_import(kind, stream, filename=name, door="inbox")
        db.session.commit()
    except Exception as exc:  # never leave a file stuck in processing/
        db.session.rollback()
        _finish(claimed, "failed", f"{name}: the import failed: {exc}\n")
        return False
    with force_locale("en"):  # the report is in English; the record keeps message ids
        lines = list(report_lines(record))
        lines += rejection_lines(record)
        if record.message:
            lines.append(shown(record.message))
    ok = record.status == "committed"
    _finish(claimed, "done" if ok else "failed", "\n".join(lines) + "\n")
    return ok
