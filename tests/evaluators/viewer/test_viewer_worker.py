"""The render worker: one thread, the latest view per client wins, tasks (exports) queue behind views.

Jobs block on events the test releases, so every ordering here is forced, not timed."""

from __future__ import annotations

import threading

import pytest

from gan3d.evaluators.viewer.render_worker import RenderWorker, Superseded, WorkerClosed

WAIT = 30.0  # seconds; only reached when the worker is broken


def blocking_job(log: list, name: str):
    """A job that records ``name`` when it starts and waits until ``release`` is set."""
    started, release = threading.Event(), threading.Event()

    def work():
        log.append(name)
        started.set()
        assert release.wait(WAIT)
        return name

    return work, started, release


def test_a_pending_view_is_superseded_by_the_same_clients_next_one():
    worker = RenderWorker()
    log: list[str] = []
    try:
        work, started, release = blocking_job(log, "running")
        running = worker.submit_view(work, client="a")
        assert started.wait(WAIT)  # the worker is busy with it now
        stale = worker.submit_view(lambda: log.append("stale") or "stale", client="a")
        other = worker.submit_view(lambda: log.append("other client") or "other", client="b")
        latest = worker.submit_view(lambda: log.append("latest") or "latest", client="a")
        with pytest.raises(Superseded, match="newer view request"):
            stale.wait(WAIT)
        assert worker.pending() == 2
        release.set()
        assert running.wait(WAIT) == "running"
        assert other.wait(WAIT) == "other" and latest.wait(WAIT) == "latest"
        # The stale view never ran; the other client's view kept its place ahead of a's newer one.
        assert log == ["running", "other client", "latest"]
    finally:
        worker.close()


def test_tasks_wait_for_pending_views_and_are_never_superseded():
    worker = RenderWorker()
    log: list[str] = []
    try:
        work, started, release = blocking_job(log, "busy")
        busy = worker.submit_task(work)
        assert started.wait(WAIT)
        first = worker.submit_task(lambda: log.append("export 1") or 1)
        second = worker.submit_task(lambda: log.append("export 2") or 2)
        view = worker.submit_view(lambda: log.append("view") or "view")
        release.set()
        assert [busy.wait(WAIT), first.wait(WAIT), second.wait(WAIT), view.wait(WAIT)] == ["busy", 1, 2, "view"]
        assert log == ["busy", "view", "export 1", "export 2"]
    finally:
        worker.close()


def test_errors_reach_the_waiter_and_the_worker_goes_on():
    worker = RenderWorker()
    try:
        def broken():
            raise ValueError("bad view")

        with pytest.raises(ValueError, match="bad view"):
            worker.submit_view(broken).wait(WAIT)
        assert worker.submit_view(lambda: 42).wait(WAIT) == 42
    finally:
        worker.close()


def test_a_wait_can_time_out_and_close_fails_what_is_left():
    worker = RenderWorker()
    log: list[str] = []
    work, started, release = blocking_job(log, "busy")
    busy = worker.submit_task(work)
    assert started.wait(WAIT)
    queued = worker.submit_task(lambda: "never")
    with pytest.raises(TimeoutError, match="did not finish within 0.01 s"):
        queued.wait(0.01)
    closer = threading.Thread(target=worker.close)
    closer.start()
    with pytest.raises(WorkerClosed, match="shut down before this job ran"):
        queued.wait(WAIT)
    release.set()
    closer.join(WAIT)
    assert busy.wait(WAIT) == "busy" and not closer.is_alive()
    with pytest.raises(WorkerClosed, match="shutting down"):
        worker.submit_view(lambda: None)
