"""How `make test`'s xdist workers share the files: the longest files first, and a file handed to a worker only once
it has nothing left to run.

Without an order, a 43-second file collected last ran alone at the end while the other workers were done. And
xdist's `--dist loadfile` hands a worker its next file as soon as two of its tests are pending: an end-to-end module
has one or two long tests, so a worker starting one queued the next module at once, and often a third, while the
other workers ran out of work (one worker ran four deployments in a row and finished ~25 s after the others).

A worker cannot run its last queued test before it knows what follows (pytest tears a module's fixtures down by
the next test), so the file it gets when idle is committed while that last test runs; with the longest files
first, what is committed then is shorter than what runs.

A file's length is what it declares with `pytest.mark.seconds(n)`: its wall time in a measured `make test`
(`tests/tools/test_scheduling.py` holds every end-to-end module to declaring one). A guess that drifts only costs
balance, never a result.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

SECONDS = "seconds"


def declared_seconds(item: pytest.Item) -> float:
    """The seconds `item`'s module declares (`pytest.mark.seconds(n)`), 0 if none."""
    marker = item.get_closest_marker(SECONDS)
    return float(marker.args[0]) if marker is not None else 0.0


def longest_first(items: list[pytest.Item]) -> None:
    """Files by declared seconds, longest first; the undeclared after them, in collection order, as is each file."""
    items.sort(key=lambda item: -declared_seconds(item))


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
