"""Peak RSS of a process, as its own high-water mark.

Not ``getrusage(...).ru_maxrss``: Linux carries the high-water mark of the image a process replaced at ``exec`` into
it, so a child of a large parent (the bench itself, grown by earlier scenarios) reports at least the parent's size.
``VmHWM`` belongs to the process's own memory map, which ``exec`` starts afresh.
"""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory of ``pid`` (default: this process) in MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20
