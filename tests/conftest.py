"""Suite-wide checks.

Child processes that outlive the tests: at exit Python joins every ``multiprocessing`` child it started,
so one that does not end (a data loader worker that ignored SIGTERM did once) keeps the test process
from exiting after its summary is printed, and CI runs into its time limit with every test passed. The
session ends such children itself and fails, naming them, instead.
"""

from __future__ import annotations

import gc
import multiprocessing

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    gc.collect()  # a test's objects that own workers (a trainer's data loader) stop them when collected
    left = multiprocessing.active_children()
    if not left:
        return
    for child in left:
        child.join(timeout=10)  # one that is ending anyway
    left = [child for child in left if child.is_alive()]
    if not left:
        return
    for child in left:
        child.kill()
        child.join(timeout=10)
    names = ", ".join(f"{child.name} (pid {child.pid})" for child in left)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"ERROR: child processes outlived the tests and were killed: {names}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
