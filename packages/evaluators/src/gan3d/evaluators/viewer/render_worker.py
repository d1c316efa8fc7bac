"""One thread that owns the generator: views (the latest per client wins) and tasks, one at a time.

The HTTP server answers each request on its own thread, but every generator call runs here, so the
generator is never used by two threads at once. A client dragging the camera sends a view request per
pointer move; a view request that has not started yet is *superseded* by the same client's next one
(its waiter gets :class:`Superseded`, HTTP 409), so at most one stale view per client is ever
rendered. Tasks (exports, the description of a scene's objects) queue behind the pending views (a
view is short, an export long) and are never superseded. A running job is not interrupted: a
PyTorch forward pass cannot be stopped half-way.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

__all__ = ["RenderWorker", "Job", "Superseded", "WorkerClosed"]

logger = logging.getLogger(__name__)


class Superseded(Exception):
    """A newer view request of the same client replaced this one before it started."""


class WorkerClosed(RuntimeError):
    """The worker stopped (the server is shutting down) before this job ran."""


class Job:
    """A call to run on the worker thread; :meth:`wait` returns its result or raises its error."""

    def __init__(self, work: Callable[[], Any], kind: str) -> None:
        self.work = work
        self.kind = kind
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None

    def _finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self._result, self._error = result, error
        self._done.set()

    def run(self) -> None:
        try:
            result = self.work()
        except BaseException as error:  # handed to the waiting request thread, which answers it
            self._finish(error=error)
        else:
            self._finish(result)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """The job's result; raises its error, :class:`Superseded`, :class:`WorkerClosed`, or
        :class:`TimeoutError` when it has not finished within ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the {self.kind} did not finish within {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self._result


class RenderWorker:
    """Runs jobs on one daemon thread: pending views first (oldest client first), then tasks in order."""

    def __init__(self, name: str = "gan3d-viewer-render") -> None:
        self._lock = threading.Condition()
        self._views: OrderedDict[str, Job] = OrderedDict()
        self._tasks: deque[Job] = deque()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit_view(self, work: Callable[[], Any], client: str = "") -> Job:
        """Queue a view for ``client``; its pending view, if any, is superseded."""
        job = Job(work, "view")
        with self._lock:
            self._check_open()
            stale = self._views.pop(client, None)
            if stale is not None:
                stale._finish(error=Superseded("superseded by a newer view request"))
            self._views[client] = job
            self._lock.notify()
        return job

    def submit_task(self, work: Callable[[], Any]) -> Job:
        """Queue a task (an export, a scene description); tasks run in the order they came, after the
        pending views, and are never superseded."""
        job = Job(work, "task")
        with self._lock:
            self._check_open()
            self._tasks.append(job)
            self._lock.notify()
        return job

    def pending(self) -> int:
        """Jobs waiting (not the running one)."""
        with self._lock:
            return len(self._views) + len(self._tasks)

    def _check_open(self) -> None:
        if self._closed:
            raise WorkerClosed("the viewer is shutting down")

    def _next(self) -> Job | None:
        with self._lock:
            while not (self._closed or self._views or self._tasks):
                self._lock.wait()
            if self._views:
                return self._views.popitem(last=False)[1]
            if self._tasks:
                return self._tasks.popleft()
            return None  # closed and nothing left

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            job.run()
            if job._error is not None and not isinstance(job._error, Exception):
                logger.error("the render thread stops: %r", job._error)
                return

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop taking jobs, fail the pending ones with :class:`WorkerClosed`, and wait for the running one."""
        with self._lock:
            self._closed = True
            for job in [*self._views.values(), *self._tasks]:
                job._finish(error=WorkerClosed("the viewer shut down before this job ran"))
            self._views.clear()
            self._tasks.clear()
            self._lock.notify_all()
        self._thread.join(timeout)
