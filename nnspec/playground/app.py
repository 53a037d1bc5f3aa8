"""The playground's web app: the page, live validation, training controls, the event
stream, and the downloads (spec, data, ONNX).

Requests that compute (validation, building a network, an export) run in Starlette's thread
pool, never on the event loop; training runs in each session's worker thread
(``session.py``). A session is one page: it is made when the page loads, streams while the
page listens, and is stopped and forgotten when the page goes away.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import pipeline
from .._version import __version__
from ..errors import NnspecError
from ..training import loop
from .check import check_text
from .datasets import (
    CHOICES,
    IRIS_FEATURES,
    MAX_NOISE,
    ChoiceError,
    DataChoice,
    choice_of_text,
    csv_text,
    load_choice,
)
from .frames import untouched
from .guard import LocalOnly, local_names
from .session import FRAME_SECONDS, MAX_TRAIN_SECONDS, Session
from .templates import TEMPLATES

MAX_SESSIONS = 8  # pages open at once; the oldest one not listening is dropped first
ORPHAN_SECONDS = 30.0  # a session whose page stopped listening this long ago is stopped
MAX_BODY = 2_000_000  # a request body: a spec of at most 1 MB, as JSON
STREAM_POLL = 0.02


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Playground:
    """The server's state: the folder it serves, the spec it opened, the open pages."""

    root: Path
    spec_file: str | None  # as given on the command line, inside root
    spec_text: str
    sessions: dict[str, Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)  # the server stops

    @property
    def display_name(self) -> str:
        """The file name in messages, as the CLI would print it."""
        return self.spec_file or "playground.yaml"

    def new_session(self) -> Session:
        with self.lock:
            self._drop_orphans()
            if len(self.sessions) >= MAX_SESSIONS:
                oldest = min(self.sessions.values(), key=lambda s: s.last_seen)
                self._forget(oldest)
            session = Session(secrets.token_urlsafe(16))
            self.sessions[session.id] = session
            return session

    def session(self, sid: object) -> Session:
        with self.lock:
            session = self.sessions.get(sid) if isinstance(sid, str) else None
        if session is None:
            raise BadRequest("unknown session (the page was closed or the server restarted)", 410)
        session.last_seen = time.monotonic()
        return session

    def _drop_orphans(self) -> None:
        now = time.monotonic()
        for s in list(self.sessions.values()):
            if s.streams == 0 and now - s.last_seen > ORPHAN_SECONDS:
                self._forget(s)

    def _forget(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        threading.Thread(target=session.close, daemon=True).start()

    def close(self, session: Session) -> None:
        with self.lock:
            self.sessions.pop(session.id, None)
        session.close()

    def close_all(self) -> None:
        with self.lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for s in sessions:
            s.close()


async def _body(request: Request) -> dict:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest(f"request of {len(raw):,} bytes; expected at most {MAX_BODY:,}", 413)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise BadRequest("expected a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    return body


def _choice(body: dict) -> DataChoice:
    try:
        return DataChoice.from_json(body.get("data", {}))
    except ChoiceError as e:
        raise BadRequest(str(e)) from None


def _spec_text(body: dict) -> str:
    text = body.get("spec")
    if not isinstance(text, str):
        raise BadRequest("spec: expected the spec's YAML text")
    return text


def _speed(session: Session, body: dict) -> None:
    if "speed" in body:
        try:
            session.set_speed(body["speed"])
        except ValueError as e:
            raise BadRequest(str(e)) from None


def _attachment(content: bytes | str, name: str, media: str) -> Response:
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def create_app(playground: Playground, port: int, hosts: set[str] | None = None) -> Starlette:
    """The ASGI app serving ``playground`` on ``port`` (``hosts``: the Host values that
    name the server; default 127.0.0.1, localhost and [::1] on that port)."""
    pg = playground
    static = resources.files("nnspec.playground") / "static"

    def handle(fn):
        """JSON in, JSON (or a download) out; user errors as 4xx with the message."""

        async def endpoint(request: Request):
            try:
                return await fn(request)
            except BadRequest as e:
                return JSONResponse({"error": str(e)}, status_code=e.status)
            except NnspecError as e:
                return JSONResponse({"error": str(e)}, status_code=422)

        return endpoint

    async def index(request: Request):
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    async def config(request: Request):
        return JSONResponse(
            {
                "version": __version__,
                "spec": pg.spec_text,
                "file": pg.display_name,
                "opened": pg.spec_file is not None,
                "data": choice_of_text(pg.spec_text) if pg.spec_file else None,
                "choices": list(CHOICES),
                "iris_features": IRIS_FEATURES,
                "max_noise": MAX_NOISE,
                "templates": TEMPLATES,
                "frame_seconds": FRAME_SECONDS,
                "max_train_seconds": MAX_TRAIN_SECONDS,
            }
        )

    async def new_session(request: Request):
        await _body(request)
        return JSONResponse({"session": pg.new_session().id})

    def _check(body: dict):
        return check_text(_spec_text(body), _choice(body), pg.display_name, pg.root)

    async def validate(request: Request):
        body = await _body(request)
        checked = await run_in_threadpool(_check, body)
        return JSONResponse(checked.as_json())

    async def train(request: Request):
        """Check the spec, then train it: a new run, unless it is the paused (or not yet
        started) run of this very spec and data, which goes on. ``run: false`` only shows the
        fresh network (the page's reset)."""
        body = await _body(request)
        session = pg.session(body.get("session"))
        run = body.get("run", True) is not False
        _speed(session, body)

        def work():
            checked = _check(body)
            if checked.spec is None:
                return checked.as_json()
            choice = _choice(body)
            with session.commands:
                if run and session.same_run(checked.spec, choice) and session.resumable():
                    session.launch()
                else:
                    session.start(checked.spec, choice, run=run)
            return checked.as_json()

        return JSONResponse(await run_in_threadpool(work))

    async def pause(request: Request):
        session = pg.session((await _body(request)).get("session"))
        with session.commands:
            session.pause()
        return JSONResponse({"state": session.snap.state})

    async def speed(request: Request):
        body = await _body(request)
        session = pg.session(body.get("session"))
        _speed(session, body)
        return JSONResponse({"speed": session.speed})

    async def stop(request: Request):
        session = pg.session((await _body(request)).get("session"))

        def work():
            with session.commands:
                session.halt()
                session.mark_stopped()

        await run_in_threadpool(work)
        return JSONResponse({"state": session.snap.state})

    async def leave(request: Request):
        """The page is going away (sent as the tab closes): stop its training now."""
        body = await _body(request)
        with pg.lock:
            session = pg.sessions.get(body.get("session"))
        if session is not None:
            await run_in_threadpool(pg.close, session)
        return JSONResponse({"closed": session is not None})

    async def events(request: Request):
        """Server-sent events: one ``update`` per change of the session (a frame, a state).
        ``once=1`` ends the stream when the run ends (for tests and scripts); the page's
        stream lasts as long as the page, and its end stops the session's training."""
        session = pg.session(request.query_params.get("session"))
        once = request.query_params.get("once") == "1"

        async def stream():
            seq, point, run = -1, 0, -1
            session.streams += 1
            try:
                yield "retry: 1000\n\n"
                while not pg.stopping.is_set():
                    event, seq, point, run = session.read(seq, point, run)
                    if event is not None:
                        yield f"event: update\ndata: {json.dumps(event)}\n\n"
                        if once and event["state"] in ("done", "stopped", "error"):
                            return
                    session.last_seen = time.monotonic()
                    await asyncio.sleep(STREAM_POLL)
            finally:
                session.streams -= 1
                if not once and session.streams == 0:
                    # The page went away (closed, reloaded, navigated): no one is watching.
                    threading.Thread(target=pg.close, args=(session,), daemon=True).start()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def export_model(request: Request):
        """The current run's network as ONNX, with the parity check of ``nnspec train`` (on
        the test split) and its metadata; taken between two steps when training runs."""
        session = pg.session((await _body(request)).get("session"))
        parts = session.export_parts()
        if parts is None:
            raise BadRequest("nothing to export yet: train (or reset) first", 409)

        def work():
            spec, network, splits, history = parts
            with untouched(network):  # a run that goes on afterwards must not feel it
                metrics = loop.evaluate(network, splits.test) if splits.test is not None else {}
                result = pipeline.TrainResult(spec, network, history, metrics, splits)
                model = pipeline.export(result)
                return model.SerializeToString(), pipeline.read_metadata(model)["parity"]

        blob, parity = await run_in_threadpool(session.call, work)
        response = _attachment(blob, f"{parts[0].name}.onnx", "application/octet-stream")
        # The page says how close onnxruntime came to the NumPy network, as nnspec train does.
        response.headers["X-Nnspec-Parity"] = json.dumps(parity)
        return response

    async def export_spec(request: Request):
        """The spec as the playground trains it: the editor's text with the panel's data."""
        body = await _body(request)
        checked = await run_in_threadpool(_check, body)
        if checked.spec is None:
            raise BadRequest(
                "the spec has errors; fix them first:\n"
                + "\n".join(i["text"] for i in checked.issues),
                422,
            )
        name = Path(pg.spec_file).name if pg.spec_file else f"{checked.spec.name}.yaml"
        return _attachment(checked.spec.source.text, name, "application/yaml")

    async def export_data(request: Request):
        choice = _choice(await _body(request))
        if choice.name not in ("circle", "xor", "gauss", "spiral"):
            raise BadRequest(f"{choice.name} is built into nnspec; the spec names it as is")
        text = await run_in_threadpool(lambda: csv_text(load_choice(choice)))
        return _attachment(text, choice.csv_name, "text/csv")

    routes = [
        Route("/", index),
        Route("/api/config", handle(config)),
        Route("/api/session", handle(new_session), methods=["POST"]),
        Route("/api/validate", handle(validate), methods=["POST"]),
        Route("/api/train", handle(train), methods=["POST"]),
        Route("/api/pause", handle(pause), methods=["POST"]),
        Route("/api/speed", handle(speed), methods=["POST"]),
        Route("/api/stop", handle(stop), methods=["POST"]),
        Route("/api/leave", handle(leave), methods=["POST"]),
        Route("/api/events", handle(events)),
        Route("/api/export/model", handle(export_model), methods=["POST"]),
        Route("/api/export/spec", handle(export_spec), methods=["POST"]),
        Route("/api/export/data", handle(export_data), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]
    middleware = [Middleware(LocalOnly, hosts=hosts or local_names(port))]
    return Starlette(routes=routes, middleware=middleware)
