"""The viewer page in a real headless Chromium, driven by Selenium: load it for a tiny GIRAFFE model,
drag to orbit, toggle depth, download the PNG.

Needs Selenium (PyPI) and Chromium with its matching chromedriver (Debian: ``apt-get install chromium
chromium-driver``; ``.ci/run`` installs them). Where they are missing the test is skipped with the
reason, unless ``GAN3D_REQUIRE_BROWSER=1`` (set by CI once it installed them), which makes a missing
browser a failure. ``GAN3D_VIEWER_SCREENSHOT=PATH`` also saves the page's screenshot to ``PATH``
(the README's ``docs/images/viewer.png`` is taken this way).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from viewer_support import get, running  # noqa: E402

from gan3d.evaluators.viewer import ViewRenderer  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WAIT = 120.0  # seconds for one page state; a 2-core CI machine renders each tiny view in well under 1 s
WINDOW = (1120, 900)


def _browser() -> tuple[str, str]:
    """``(browser, chromedriver)`` paths, or skip (fail under ``GAN3D_REQUIRE_BROWSER=1``) saying what is missing."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install selenium)")
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if browser is None:
        missing.append(f"a Chromium browser ({' / '.join(BROWSERS)} on PATH; Debian: apt-get install chromium)")
    if driver is None:
        missing.append("chromedriver (Debian: apt-get install chromium-driver)")
    if missing:
        reason = "no headless browser here: missing " + "; ".join(missing)
        if os.environ.get("GAN3D_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (GAN3D_REQUIRE_BROWSER=1 asks for the browser test to run)")
        pytest.skip(reason)
    return browser, driver


@pytest.fixture
def chromium(tmp_path):
    browser, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WINDOW[0]},{WINDOW[1] + 200}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    # The page's viewport exactly WINDOW, whatever the browser's own frame takes (for the screenshot).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, what: str):
    """Poll ``condition(driver)`` until it is truthy; fail naming ``what`` and the page's status line."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition(driver)
        if value:
            return value
        time.sleep(0.05)
    status = driver.execute_script("return document.getElementById('status').textContent")
    pytest.fail(f"the page did not reach '{what}' within {WAIT:g} s (status line: {status!r})")


def settled(driver) -> bool:
    """Every view the page asked for is on screen."""
    return driver.execute_script("return window.gan3dViewer !== undefined && window.gan3dViewer.idle()")


def shown_pixels(driver) -> np.ndarray:
    """The pixels of the image on screen, read back through a canvas: ``uint8 [H, W, 4]``."""
    width, height, data = driver.execute_script("""
        const img = document.getElementById('view');
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        return [canvas.width, canvas.height, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];
    """)
    return np.asarray(data, dtype=np.uint8).reshape(height, width, 4)


def frame_label(driver) -> str:
    return driver.find_element("id", "frame-time").text


FULL_LABEL = re.compile(r"^frame (\d+) · \d+ ms \(render \d+ ms\) · 16 px$")


def test_orbit_toggle_depth_and_download_in_chromium(chromium, checkpoint_of, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains

    with running(ViewRenderer.load(checkpoint_of("giraffe"))) as server:
        chromium.get(server.url)
        wait_for(chromium, settled, "the first frame")
        assert chromium.find_element("id", "model-name").text == "giraffe (synthetic) · 16 px · cpu"
        assert chromium.find_element("id", "objects").is_displayed()  # GIRAFFE: the object edits are offered
        first_label, first = frame_label(chromium), shown_pixels(chromium)
        assert FULL_LABEL.match(first_label), first_label
        assert first.shape == (32, 32, 4)  # 16-px features through GIRAFFE's 2x neural renderer

        # Drag to orbit: previews at the preview resolution while moving, the full view once released.
        view = chromium.find_element("id", "view-frame")
        drag = ActionChains(chromium).click_and_hold(view)
        for _ in range(6):
            drag = drag.move_by_offset(25, 6).pause(0.1)
        drag.release().perform()
        wait_for(chromium, settled, "the view refined after the drag")
        state = chromium.execute_script("return window.gan3dViewer.state")
        assert state["yaw"] == pytest.approx(-6 * 25 * 0.4, abs=1.0) and state["pitch"] == pytest.approx(6 * 6 * 0.4,
                                                                                                           abs=1.0)
        frames = chromium.execute_script("return window.gan3dViewer.frames")
        assert any(not f["full"] and f["resolution"] == 8 for f in frames), frames  # a preview was shown
        assert frames[-1]["full"] and frames[-1]["resolution"] == 16
        orbited_label, orbited = frame_label(chromium), shown_pixels(chromium)
        assert FULL_LABEL.match(orbited_label) and orbited_label != first_label
        assert int(FULL_LABEL.match(orbited_label)[1]) > int(FULL_LABEL.match(first_label)[1])
        assert not np.array_equal(orbited, first), "orbiting did not change the image"
        query = chromium.execute_script("return window.gan3dViewer.shownQuery()")
        assert np.array_equal(orbited[..., :3], get(server, f"/api/render?{query}").image())

        # Toggle depth: the page renders the colour-mapped depth of the same view.
        chromium.find_element("css selector", "label[for=mode-depth]").click()
        wait_for(chromium, lambda d: settled(d) and d.execute_script(
            "return document.getElementById('view').dataset.mode") == "depth", "the depth view")
        depth = shown_pixels(chromium)
        assert not np.array_equal(depth, orbited), "the depth toggle did not change the image"
        query = chromium.execute_script("return window.gan3dViewer.shownQuery()")
        assert "mode=depth" in query and np.array_equal(depth[..., :3], get(server, f"/api/render?{query}").image())

        # Download the PNG: the file is the server's full-resolution export of this view.
        chromium.find_element("id", "export-png").click()
        saved = chromium.downloads / "giraffe_seed0000_depth.png"
        wait_for(chromium, lambda d: saved.is_file() and not list(chromium.downloads.glob("*.crdownload")),
                 f"the download of {saved.name}")
        assert saved.read_bytes() == get(server, f"/api/export/png?{query}").body
        assert iio.imread(saved).shape == (16, 16, 3)
        wait_for(chromium, lambda d: d.find_element("id", "status").text == f"saved {saved.name}", "the saved line")

        # Back to the image for the screenshot (the README's picture of the page).
        chromium.find_element("css selector", "label[for=mode-image]").click()
        wait_for(chromium, lambda d: settled(d) and d.execute_script(
            "return document.getElementById('view').dataset.mode") == "image", "the image view")
        screenshot = tmp_path / "viewer.png"
        assert chromium.save_screenshot(str(screenshot))
        assert iio.imread(screenshot).shape[:2] == (WINDOW[1], WINDOW[0])
        if os.environ.get("GAN3D_VIEWER_SCREENSHOT"):
            shutil.copyfile(screenshot, os.environ["GAN3D_VIEWER_SCREENSHOT"])

    errors = [entry for entry in chromium.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"the page logged errors: {errors}"
