"""How often the playground's page is updated while it trains: XOR, two hidden layers of 8
tanh units (the starting spec), as fast as training goes, in a real Chromium.

    python -m bench.playground_rate [--seconds 5] [--repeats 3] [--chromium /usr/bin/chromium]

Prints, per repeat, the frames the server painted per second and the updates the page drew
per second, and the epochs per second trained meanwhile (the issue asks for at least 10
updates a second on 2 cores). Needs the ``ui`` extra and playwright.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

from nnspec.playground.app import Playground, create_app
from nnspec.playground.templates import TEMPLATES


def _serve(root):
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    playground = Playground(root, None, TEMPLATES["xor"].replace("epochs: 300", "epochs: 100000"))
    config = uvicorn.Config(create_app(playground, port), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/", playground, server


def main() -> None:
    import tempfile
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    url, playground, server = _serve(Path(tempfile.mkdtemp()))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for r in range(args.repeats):
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("window.nnspecPlayground.state === 'ready'", timeout=30_000)
            page.select_option("#speed", "0")
            page.click("#train")
            page.wait_for_function("window.nnspecPlayground.state === 'running'")
            f0, e0, t0 = page.evaluate(
                "[window.nnspecPlayground.frames, window.nnspecPlayground.frame.epoch]"
            ) + [time.perf_counter()]
            time.sleep(args.seconds)
            f1, e1 = page.evaluate(
                "[window.nnspecPlayground.frames, window.nnspecPlayground.frame.epoch]"
            )
            seconds = time.perf_counter() - t0
            [session] = playground.sessions.values()
            print(
                f"run {r + 1}: server {session.updates_per_second():.1f} frames/s, page "
                f"{(f1 - f0) / seconds:.1f} updates/s, {(e1 - e0) / seconds:.0f} epochs/s"
            )
            page.close()
            time.sleep(0.5)
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()
