"""CPU time spent while a piece of work runs: by this process (all its threads), by the child
processes it waited for (the import's parsing worker), and by a PostgreSQL server running on
this machine (Linux /proc). With 2 cores, the CPU seconds a job needs bound how fast it can be:
at best half of them, in wall time, when both cores are busy throughout."""

from __future__ import annotations

import os
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class CpuUse:
    wall: float = 0.0
    client: float = 0.0  # this process and the children it waited for
    server: float | None = None  # the local PostgreSQL server's processes; None: not measured

    @property
    def total(self) -> float:
        return self.client + (self.server or 0.0)

    def describe(self) -> str:
        if self.server is None:
            return f"{self.client:.1f} CPU-s in {self.wall:.1f} s"
        return (
            f"{self.total:.1f} CPU-s (client {self.client:.1f}, server {self.server:.1f}) "
            f"in {self.wall:.1f} s"
        )


def _client_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def postgres_seconds() -> float | None:
    """CPU seconds used so far by the processes of a PostgreSQL server on this machine: each
    live process's own, and the postmaster's reaped children's (parallel workers and backends
    that exited count there). None when no such server is visible."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited meanwhile; its time is in its parent's reaped children's
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if name.startswith("postgres"):
            processes[int(entry.name)] = fields.split()
    if not processes:
        return None
    ticks = 0
    for fields in processes.values():
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if int(fields[1]) not in processes:  # its parent is no postgres: the postmaster
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICKS


@contextmanager
def measured(*, server: bool):
    """Measure the block's wall and CPU time into the CpuUse it yields."""
    use = CpuUse()
    started, client = time.perf_counter(), _client_seconds()
    before = postgres_seconds() if server else None
    try:
        yield use
    finally:
        use.wall = time.perf_counter() - started
        use.client = _client_seconds() - client
        after = postgres_seconds() if server else None
        if before is not None and after is not None:
            use.server = after - before
