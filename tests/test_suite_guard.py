"""The suite's own guard (tests/conftest.py): a test that leaves a child process running that does not end
makes the session fail with the child named, instead of hanging after the summary while Python joins it
at exit (what ran CI into its time limit once)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

LEAKY_TEST = '''
import multiprocessing
import signal
import time

KEEP = []  # the child stays referenced until the session ends


def _stubborn():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as the loader workers once did
    while True:
        time.sleep(1)


def test_leaves_a_child():
    child = multiprocessing.get_context("fork").Process(target=_stubborn, name="stubborn", daemon=True)
    child.start()
    KEEP.append(child)
'''


def _run_pytest(folder: Path) -> subprocess.CompletedProcess:
    shutil.copy(HERE / "conftest.py", folder / "conftest.py")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          capture_output=True, text=True, timeout=120, cwd=folder)


def test_a_child_left_running_fails_the_session_instead_of_hanging_it(tmp_path):
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    done = _run_pytest(tmp_path)  # without the guard: TimeoutExpired (the join at exit never returns)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "1 passed" in said and "child processes outlived the tests and were killed: stubborn" in said, said


def test_a_clean_session_is_left_alone(tmp_path):
    (tmp_path / "test_clean.py").write_text("def test_nothing():\n    assert True\n")
    done = _run_pytest(tmp_path)
    assert done.returncode == 0 and "outlived" not in done.stdout, done.stdout + done.stderr
