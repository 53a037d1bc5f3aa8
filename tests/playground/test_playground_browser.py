"""nnspec playground in a real browser: Debian's Chromium driven by Playwright, against the
real server (uvicorn) on 127.0.0.1.

Skipped where there is no Chromium at /usr/bin/chromium (or NNSPEC_CHROMIUM), unless
NNSPEC_REQUIRE_BROWSER=1, which CI sets after installing it (.ci/run): there a missing
browser fails rather than skips. NNSPEC_PLAYGROUND_SCREENSHOT=PATH also writes the
screenshot there (docs/playground.png was taken so).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
playwright_api = pytest.importorskip("playwright.sync_api")

from nnspec.playground.app import Playground, create_app  # noqa: E402
from nnspec.playground.datasets import DataChoice, load_choice  # noqa: E402
from nnspec.playground.templates import TEMPLATES  # noqa: E402

CHROMIUM = os.environ.get("NNSPEC_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).is_file() and os.environ.get("NNSPEC_REQUIRE_BROWSER") != "1":
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install -y chromium; CI installs it and sets "
        "NNSPEC_REQUIRE_BROWSER=1)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The playground served by uvicorn in a thread, as ``nnspec playground`` serves it."""
    root = tmp_path_factory.mktemp("served")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    playground = Playground(root, None, TEMPLATES["xor"])
    config = uvicorn.Config(
        create_app(playground, port), log_level="warning", lifespan="off", access_log=False
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the playground server did not start"
    yield f"http://127.0.0.1:{port}/", playground
    srv.should_exit = True
    thread.join(timeout=10)
    playground.close_all()
    sock.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _picture(page) -> tuple[np.ndarray, float]:
    """The region canvas's pixels, every 6th row and column: (60, 60, 3); and the epoch of
    the frame it shows, read in the same call."""
    data, epoch = page.evaluate(
        """() => { const c = document.getElementById('picture');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   const out = [];
                   for (let y = 0; y < c.height; y += 6)
                     for (let x = 0; x < c.width; x += 6)
                       for (let k = 0; k < 3; k++) out.push(d[4 * (y * c.width + x) + k]);
                   return [out, window.nnspecPlayground.frame.epoch]; }"""
    )
    return np.array(data, np.uint8).reshape(60, 60, 3), epoch


def test_the_lecture_demo_in_chromium(server, browser, tmp_path):
    import onnxruntime as ort

    url, playground = server
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#issues li.ok", timeout=15_000)
    assert page.inner_text("#issues li.ok") == "playground.yaml: valid"
    assert page.locator("#table tr").count() == 4  # input and three dense layers

    # A misspelt key, typed: marked at its line in the gutter and the text, with the
    # CLI's message.
    text = page.input_value("#spec")
    lines = text.rstrip("\n").split("\n")
    page.click("#spec")
    page.keyboard.press("Control+End")
    page.keyboard.type("  batch_sise: 4\n")
    typo_line = len(lines) + 1
    page.wait_for_selector("#gutter div.err", timeout=10_000)
    assert page.get_attribute("#gutter div.err", "data-line") == str(typo_line)
    assert page.get_attribute("#marks .line", "data-line") == str(typo_line)
    issue = page.inner_text("#issues li")
    assert issue.startswith(f"playground.yaml:{typo_line}:3: train.batch_sise: unknown key")
    assert "did you mean 'batch_size'" in issue
    assert page.is_disabled("#train")
    page.screenshot(path=str(tmp_path / "typo.png"))

    # Put it right: the mark goes, the spec is valid again.
    page.fill("#spec", text)
    page.dispatch_event("#spec", "input")
    page.wait_for_selector("#issues li.ok", timeout=10_000)
    assert page.locator("#gutter div.err").count() == 0

    # Train XOR (two hidden layers of 8) at 30 epochs a second: the regions move.
    page.select_option("#speed", "30")
    page.click("#data-xor")
    page.wait_for_function("window.nnspecPlayground.state === 'ready'", timeout=10_000)
    page.click("#train")
    page.wait_for_function("window.nnspecPlayground.frame.epoch >= 2", timeout=20_000)
    early, early_epoch = _picture(page)
    page.wait_for_function(
        f"window.nnspecPlayground.frame.epoch >= {early_epoch + 20}", timeout=20_000
    )
    later, later_epoch = _picture(page)
    assert later_epoch > early_epoch
    changed = np.abs(early.astype(int) - later.astype(int)).max(axis=2) > 30
    assert changed.mean() > 0.01, f"{changed.mean():.4f} of the picture changed"
    assert later.std() > 20  # a picture, not a blank canvas

    page.select_option("#speed", "0")
    page.wait_for_function("window.nnspecPlayground.state === 'done'", timeout=60_000)
    assert page.inner_text("#epoch") == "300"
    accuracy = float(page.get_attribute("#metrics", "data-test-metric"))
    assert accuracy > 0.9
    frames = page.evaluate("window.nnspecPlayground.frames")
    assert frames > 10
    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot))
    if os.environ.get("NNSPEC_PLAYGROUND_SCREENSHOT"):
        shutil.copy(shot, os.environ["NNSPEC_PLAYGROUND_SCREENSHOT"])

    # Export, and run the download in onnxruntime on the test split.
    with page.expect_download(timeout=30_000) as download:
        page.click("#dl-onnx")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "playground.onnx"
    page.wait_for_function("document.getElementById('status').textContent.includes('parity')")
    assert "vs NumPy, 250 test samples): max abs err" in page.inner_text("#status")
    session = ort.InferenceSession(str(saved))
    data = load_choice(DataChoice("xor", 0.0, 0, 0.5))
    probabilities, labels = session.run(
        None, {session.get_inputs()[0].name: data.x.astype(np.float32)}
    )
    assert (labels == data.y).mean() > 0.9
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert errors == []

    # The page goes away: its session (and any training) is stopped and forgotten.
    assert len(playground.sessions) == 1
    page.close()
    deadline = time.monotonic() + 10
    while playground.sessions and time.monotonic() < deadline:
        time.sleep(0.1)
    assert playground.sessions == {}
