"""Progress display while waiting for queued jobs (queued / running / done / failed, elapsed).

Shown on a terminal; quiet otherwise unless ``WFL_PROGRESS=1`` asks for it (then one plain
line per change, suitable for log files). ``WFL_PROGRESS=0`` silences it everywhere.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from expyre.poll import progress_groups


class JobProgress:
    """Context manager showing the state of a set of queued jobs.

    Parameters
    ----------
    description : str
        What is running, e.g. the job name.
    total : int
        Number of jobs.
    """

    def __init__(self, description: str, total: int) -> None:
        self.description = description
        self.total = total
        setting = os.environ.get("WFL_PROGRESS", "").strip()
        self.mode = "off"
        if setting == "1":
            self.mode = "rich" if sys.stderr.isatty() else "lines"
        elif setting != "0" and sys.stderr.isatty():
            self.mode = "rich"
        self._last_line = ""
        self._progress: Any = None
        self._task: Any = None
        self._t0 = time.monotonic()

    def __enter__(self) -> JobProgress:
        if self.mode == "rich":
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} done"),
                TextColumn("{task.fields[states]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total, states="")
        return self

    def update(self, counts: dict[str, int], elapsed_s: float | None = None) -> None:
        """Show new status counts (as given by expyre's poller)."""
        groups = progress_groups(counts)
        states = "queued {queued}  running {running}  failed {failed}".format(**groups)
        if self.mode == "rich":
            self._progress.update(self._task, completed=groups["done"], states=states)
        elif self.mode == "lines":
            elapsed = time.monotonic() - self._t0 if elapsed_s is None else elapsed_s
            line = f"{self.description}: {groups['done']}/{self.total} done, {states}"
            if line != self._last_line:
                print(f"[{elapsed:7.1f} s] {line}", file=sys.stderr, flush=True)
                self._last_line = line

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
