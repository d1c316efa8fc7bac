"""The `tests` session of noxfile.py fails when pytest collects nothing (exit status 5)."""

from __future__ import annotations

import ast
from pathlib import Path

NOXFILE = Path(__file__).resolve().parents[1] / "noxfile.py"


def _session_runs(name: str) -> list[ast.Call]:
    tree = ast.parse(NOXFILE.read_text())
    (session,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    return [node for node in ast.walk(session) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "run"]


def test_the_tests_session_accepts_only_exit_status_0():
    runs = _session_runs("tests")
    pytest_runs = [call for call in runs if any(isinstance(a, ast.Constant) and a.value == "pytest" for a in call.args)]
    assert pytest_runs, "the tests session no longer runs pytest"
    for call in pytest_runs:
        codes = [kw.value for kw in call.keywords if kw.arg == "success_codes"]
        # nox's default is [0]; anything else must not let "no tests collected" (5) pass.
        assert not codes or ast.literal_eval(codes[0]) == [0], ast.unparse(call)
