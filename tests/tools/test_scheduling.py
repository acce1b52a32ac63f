"""`make test`'s schedule (tests/support/scheduling.py): the longest files first, files handed to idle workers
only. Driven through xdist's scheduler protocol (add nodes and collections, schedule, complete tests)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from xdist.scheduler import LoadFileScheduling

from tests.support.scheduling import SECONDS, IdleFirst, longest_first

E2E_MODULES = sorted((Path(__file__).parent.parent / "e2e").glob("test_*.py"))


class Worker:
    """What a scheduler sees of an xdist worker: the test indices it is sent, and a shutdown."""

    def __init__(self, name: str):
        self.name, self.sent, self.shutting_down = name, [], False
        self.gateway = SimpleNamespace(id=name)  # names the worker in xdist's collection comparison

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


# Three tests in a.py, then one-test files: b, c, d.
COLLECTION = ["a.py::t1", "a.py::t2", "a.py::t3", "b.py::t1", "c.py::t1", "d.py::t1"]


def who_gets_d(scheduler_class: type[LoadFileScheduling]) -> str:
    """Two workers: w1 starts a.py, w2 b.py (and c.py, since b.py's one test waits for a successor); then w1
    completes a test while w2 still holds b.py and c.py. Which worker is d.py handed to?"""
    config = SimpleNamespace(option=SimpleNamespace(loadscopereorder=False), getvalue=lambda name: ["2*popen"])
    scheduler = scheduler_class(config)
    w1, w2 = Worker("w1"), Worker("w2")
    for worker in (w1, w2):
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, COLLECTION)
    scheduler.schedule()
    assert (w1.sent, w2.sent) == ([0, 1, 2], [3, 4])
    scheduler.mark_test_complete(w1, 0)  # a.py: two tests still pending
    scheduler.mark_test_complete(w2, 3)  # w2: c.py's test, held for its successor
    (taker,) = [worker.name for worker in (w1, w2) if COLLECTION.index("d.py::t1") in worker.sent]
    return taker


def test_a_file_goes_to_the_worker_that_is_idle_not_to_one_with_two_tests_left():
    assert who_gets_d(LoadFileScheduling) == "w1"  # xdist's own: two tests pending are "almost depleted"
    assert who_gets_d(IdleFirst) == "w2"


def test_files_come_longest_first_the_undeclared_last_each_file_in_its_order():
    def item(name: str, seconds: float | None) -> SimpleNamespace:
        marker = None if seconds is None else pytest.mark.seconds(seconds).mark
        return SimpleNamespace(name=name, get_closest_marker=lambda _: marker)

    items = [item("unit", None), item("short::1", 20), item("long::1", 160), item("short::2", 20), item("other", None)]
    longest_first(items)
    assert [i.name for i in items] == ["long::1", "short::1", "short::2", "unit", "other"]


@pytest.mark.parametrize("path", E2E_MODULES, ids=lambda path: path.stem)
def test_every_end_to_end_module_declares_its_seconds(path: Path):
    marks = importlib.import_module(f"tests.e2e.{path.stem}").pytestmark
    declared = [mark.args[0] for mark in marks if mark.name == SECONDS]
    assert len(declared) == 1 and declared[0] > 0, f"{path}: pytestmark needs pytest.mark.seconds(n)"
