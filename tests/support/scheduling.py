"""How `make test`'s xdist workers share the files: end-to-end modules longest first, and a file handed to a worker
only once it has nothing left to run.

xdist's `--dist loadfile` hands a worker its next file as soon as two of its tests are pending. An end-to-end module
has one or two long tests, so a worker starting one queued the next module at once, and often a third, while the
other workers ran out of work: one worker ran four deployments in a row and finished ~25 s after the others.

A worker cannot run its last queued test before it knows what follows (pytest tears a module's fixtures down by
the next test), so the file it gets when idle is committed while that last test runs; with the longest modules
first, what is committed then is shorter than what runs.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

E2E = "e2e"


def e2e_seconds(item: pytest.Item) -> float | None:
    """The `seconds` an end-to-end module declares (`pytest.mark.e2e(seconds=...)`: its measured wall time in the
    suite), 0 if it declares none; None for a test that is not end to end."""
    marker = item.get_closest_marker(E2E)
    return None if marker is None else float(marker.kwargs.get("seconds", 0))


def longest_first(items: list[pytest.Item]) -> None:
    """End-to-end modules first, by declared seconds (longest first), then the rest; order within a file kept."""

    def key(item: pytest.Item) -> tuple[bool, float]:
        seconds = e2e_seconds(item)
        return seconds is None, -(seconds or 0)

    items.sort(key=key)


class IdleFirst(LoadFileScheduling):
    """`--dist loadfile`, but a worker gets its next file only when one test at most is pending: the one it holds
    back until it knows the next (xdist's own threshold is two). Relies on xdist 3.8's scheduler internals, pinned
    in constraints.txt."""

    def _reschedule(self, node: WorkerController) -> None:
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > 1:
            return
        self._assign_work_unit(node)
