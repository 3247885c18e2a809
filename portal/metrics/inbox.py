"""The inbox folder: files dropped into INBOX_DIR/<kind>/ are imported by the scheduler.

Each file is claimed by locking it and moving it into `processing/` (one process wins),
imported, then moved to `done/` or `failed/` with its report beside it. Files still being
written (recently modified, or named *.part / *.tmp / .*) are left for the next run. A move
never replaces a file: a new file of the same name as one still in `processing/` waits in
the inbox until that one is filed.

The lock (flock) is held while the file is imported, and the system drops it when the
process ends, however it ends. A file in `processing/` that nobody holds was being imported
by a scheduler that stopped (a restart, a crash). An import is one transaction, so it is
imported again where it lies (rows already stored would be found unchanged); interrupted a
second time, it is moved to `failed/` with a report saying so, rather than tried forever.
"""

from __future__ import annotations

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
INTERRUPTED = ".interrupted"  # a file's mark that its import was interrupted once


def _ready(path: Path, now: float) -> bool:
    name = path.name
    if name.startswith(".") or name.endswith((".part", ".tmp", ".report.txt")):
        return False
    return path.is_file() and now - path.stat().st_mtime >= SETTLE_SECONDS


def _identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}"


def _locked(path: Path):
    """The file opened and locked for this process, or None if another process holds it, or
    it is gone or was replaced meanwhile. The lock lasts until the returned file is closed,
    or the process ends."""
    try:
        held = path.open("rb")
    except OSError:
        return None
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Locked what is still there under that name (not a file moved away meanwhile)?
        if _identity(os.fstat(held.fileno())) != _identity(os.stat(path)):
            raise OSError
    except OSError:
        held.close()
        return None
    return held


def _move(path: Path, target: Path) -> bool:
    """Move a file to `target` unless a file of that name is there (a rename would replace
    it): whether it moved."""
    try:
        os.link(path, target)
    except FileExistsError:
        return False
    os.unlink(path)
    return True


def _claim(path: Path):
    """Lock the file, then move it into processing/: (its new path, the locked file), or None
    if another process has it, or a file of its name is still there. Locking first means no
    other process ever sees it in processing/ unlocked while this one is at work."""
    held = _locked(path)
    if held is None:
        return None
    processing = path.parent / "processing"
    processing.mkdir(exist_ok=True)
    target = processing / path.name
    try:
        if _move(path, target):
            return target, held
    except OSError:
        pass
    held.close()
    return None


def _marker(claimed: Path) -> Path:
    return claimed.with_name(f".{claimed.name}{INTERRUPTED}")


def _retry_interrupted(kind: str, folder: Path) -> tuple[int, int]:
    """Files left in processing/ by a scheduler that stopped: imported again where they lie
    once, moved to failed/ the second time. Returns how many were imported and refused."""
    processing = folder / "processing"
    if not processing.is_dir():
        return 0, 0
    done = failed = 0
    for path in sorted(processing.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        held = _locked(path)
        if held is None:
            continue  # being imported right now
        with held:
            marker, identity = _marker(path), _identity(os.fstat(held.fileno()))
            try:
                before = marker.read_text()
            except OSError:
                before = ""
            if before == identity:  # this very file (not an earlier one of its name)
                _finish(
                    path,
                    "failed",
                    f"{path.name}: the import was interrupted twice (the scheduler stopped "
                    "while importing it). Put the file back into the inbox folder to try "
                    "again.\n",
                )
                failed += 1
                continue
            marker.write_text(identity)
            ok = _import_one(kind, path, path.name)
            done, failed = done + ok, failed + (not ok)
    for marker in processing.glob(f".*{INTERRUPTED}"):  # of files filed or removed since
        if not marker.with_name(marker.name[1 : -len(INTERRUPTED)]).exists():
            marker.unlink(missing_ok=True)
    return done, failed


def _finish(claimed: Path, outcome: str, report: str) -> Path:
    folder = claimed.parent.parent / outcome
    folder.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target, n = folder / f"{stamp}-{claimed.name}", 1
    while not _move(claimed, target):  # one of that name filed this second already
        n += 1
        target = folder / f"{stamp}-{n}-{claimed.name}"
    target.with_name(target.name + ".report.txt").write_text(report, encoding="utf-8")
    _marker(claimed).unlink(missing_ok=True)
    return target


def import_inbox(now: datetime) -> str:
    """Import every settled file of the inbox; returns a one-line summary."""
    root = Path(current_app.config["INBOX_DIR"])
    done = failed = 0
    clock = time.time()
    for kind in KINDS:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        retried, refused = _retry_interrupted(kind, folder)
        done, failed = done + retried, failed + refused
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
