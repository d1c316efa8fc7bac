"""Test and demo sessions. ``nox -s tests`` is the test command of the README and of CI.

Sessions:
    tests    fresh venv, torch==2.13.0 and all six packages (editable), pytest over tests/ (with
             Selenium for the viewer's browser test, which needs Chromium and chromedriver on PATH)
    minimal  only gan3d-core and gan3d-samplers, installed from built wheels: installing only the
             plugins you need works, and a missing family gives the clear error
    plugin   the example third-party plugin beside gan3d-core: the registry and
             `tools/run.py plugins` see it
    lint     ruff
    demo     the README's main job: train pi-GAN on the embedded synthetic set
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests", "minimal", "plugin"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# Pinned so that nothing pulls another (multi-GB CUDA) torch; installed first, so the packages'
# `torch>=2.1` is already satisfied.
TORCH = "torch==2.13.0"
PACKAGES = ["core", "samplers", "embedders", "renderers", "evaluators", "methods"]
TEST_TOOLS = ["pytest>=8", "pytest-timeout"]
# Drives Chromium in the viewer's browser test; pure Python, pulls neither torch nor numpy.
BROWSER_TEST_TOOLS = ["selenium>=4.11"]


def _install_all(session: nox.Session, editable: bool = True) -> None:
    session.install(TORCH)
    args = []
    for pkg in PACKAGES:
        args += (["-e", f"packages/{pkg}"] if editable else [f"packages/{pkg}"])
    session.install(*args)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The full suite: every package and the example plugin installed, every test."""
    _install_all(session)
    session.install("-e", "examples/gan3d-fourier")
    session.install(*TEST_TOOLS, *BROWSER_TEST_TOOLS)
    # Exit status 0 only: pytest's 5 ("no tests collected", a broken collection or a wrong -k) is a failure.
    session.run("python", "-m", "pytest", "tests", "-q", "--timeout=600", *session.posargs,
                env={"GAN3D_STRICT_PLUGINS": "1", "OMP_NUM_THREADS": "2"})


@nox.session(python=PYTHON)
def minimal(session: nox.Session) -> None:
    """gan3d-core and gan3d-samplers only, from wheels (not editable checkouts)."""
    session.install(TORCH)
    session.install("packages/core", "packages/samplers")
    session.install(*TEST_TOOLS)
    session.run("python", "-m", "pytest", "tests/install/test_minimal_install.py", "-q",
                env={"GAN3D_EXPECT_MINIMAL": "1"})


@nox.session(python=PYTHON)
def plugin(session: nox.Session) -> None:
    """The example third-party plugin beside gan3d-core."""
    session.install(TORCH)
    session.install("packages/core", "examples/gan3d-fourier")
    session.install(*TEST_TOOLS)
    session.run("python", "-m", "pytest", "tests/install/test_example_plugin.py", "-q",
                env={"GAN3D_EXPECT_EXAMPLE_PLUGIN": "1"})
    session.run("python", "tools/run.py", "plugins")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "packages", "tools", "tests", "examples", "noxfile.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The README's main job: pi-GAN on the embedded synthetic set, CPU-friendly size."""
    _install_all(session)
    session.run("python", "tools/run.py", "train", "--method", "pigan", *session.posargs)
