"""``nnspec playground [SPEC] [--port N] [--no-browser]``: serve the page on 127.0.0.1.

Only argparse at import time (the CLI builds every subparser on every run); Starlette and
uvicorn, the optional ``ui`` extra, are imported when the server starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

INSTALL = 'pip install "nnspec[ui]"'
DEFAULT_PORT = 8765


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}")
    return value


def add_parser(sub) -> None:
    """The ``playground`` subcommand under ``nnspec``."""
    s = sub.add_parser(
        "playground",
        help="edit a spec in the browser and watch it train: live validation, decision "
        'regions, hidden units, ONNX export (needs pip install "nnspec[ui]")',
        description="Start a local web app (http://127.0.0.1:PORT) where a spec is edited "
        "with live validation and trained on TensorFlow Playground's 2-D data sets, iris or "
        "mcycle, streaming its decision regions (or fit), its hidden units and its loss.",
    )
    s.add_argument(
        "spec",
        nargs="?",
        help="YAML spec to open, inside the current folder (default: a two-hidden-layer "
        "classifier of the XOR set)",
    )
    s.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})"
    )
    s.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    s.set_defaults(func=playground_command)


def _opened_spec(spec: str | None, root: Path) -> tuple[str | None, str]:
    """(the name to show, the text) of SPEC, which must lie inside ``root``."""
    from ..errors import Issue, SpecError
    from ..spec.models import read_spec_text
    from .templates import TEMPLATES

    if spec is None:
        return None, TEMPLATES["xor"]
    path = Path(spec)
    if not path.resolve().is_relative_to(root):
        raise SpecError(
            [
                Issue(
                    f"is outside the folder the playground serves ({root}); it reads no file "
                    "outside the folder it was started in: start it there, or copy the spec "
                    "into this folder",
                    (),
                    spec,
                )
            ]
        )
    return spec, read_spec_text(path)


def playground_command(args) -> int:
    """Serve until Ctrl-C; exit 2 when the extra is missing or the port is taken."""
    from ..errors import NnspecError

    try:
        import uvicorn  # noqa: F401
        from starlette.applications import Starlette  # noqa: F401
    except ImportError:
        raise NnspecError(
            f"nnspec playground needs Starlette and uvicorn, which are not installed; install "
            f"them with: {INSTALL}"
        ) from None
    root = Path.cwd().resolve()
    name, text = _opened_spec(args.spec, root)
    serve(root, name, text, args.port, open_browser=not args.no_browser)
    return 0


def serve(root: Path, name: str | None, text: str, port: int, *, open_browser: bool) -> None:
    import socket
    import threading
    import webbrowser

    import uvicorn

    from ..errors import NnspecError
    from .app import Playground, create_app

    # Bind first, so that a port in use is one clear line rather than uvicorn's log.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        raise NnspecError(
            f"--port {port}: cannot listen on 127.0.0.1:{port} ({e.strerror}); is another "
            "playground running? Choose another port with --port N"
        ) from None
    playground = Playground(root, name, text)
    app = create_app(playground, port)
    url = f"http://127.0.0.1:{port}/"
    # A page's event stream never ends by itself: on Ctrl-C the streams are told to end
    # (``stopping``), and whatever still runs two seconds later is cancelled.
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            playground.stopping.set()
            super().handle_exit(sig, frame)

    server = Server(config)
    print(f"nnspec playground: {url} (serving {root}; Ctrl-C to stop)", file=sys.stderr)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn raises the signal again once it has shut down; for a server, Ctrl-C is how
        # it is meant to end, not a failure.
        pass
    finally:
        playground.close_all()
    print("nnspec playground: stopped", file=sys.stderr)
