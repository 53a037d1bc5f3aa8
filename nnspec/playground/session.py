"""One page's training: a worker thread that runs the trainer and paints frames.

The worker runs ``nnspec.training.loop.fit`` exactly as ``nnspec train`` does (the same
splits, seed, optimizer and stopping), so a spec downloaded from the page trains to the same
weights on the command line. Between two steps (``on_batch``) it paints a frame when the last
one is older than ``FRAME_SECONDS``, parks while paused, and runs what requests asked of it
(an export) at a moment when the weights stand still. Watching changes no bit: the pictures
come from eval-mode forward passes, and the scores (``loop.evaluate``, which scores as the
trainer does, dropout masks and batchnorm statistics included) run inside
``frames.untouched``, which puts the generators and statistics back.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from .. import pipeline
from ..errors import NnspecError
from ..training import loop
from ..training.interrupt import StopRequest, TrainingInterrupted
from ..training.state import History
from .datasets import DataChoice, load_choice
from .frames import FramePainter

FRAME_SECONDS = 0.05  # at most 20 frames a second: the page redraws at its own pace anyway
MAX_TRAIN_SECONDS = 600.0  # one run's wall-clock limit: a forgotten tab stops on its own
MAX_EPOCHS = 100_000
REQUEST_SECONDS = 60.0


@dataclass
class Snapshot:
    """What the page is told: ``seq`` goes up with every change; ``points`` grows by one
    (epoch, metrics) entry per frame, so a reader that missed frames still gets every point."""

    seq: int = 0
    state: str = "idle"  # idle, ready (untrained), running, paused, done, stopped, error
    message: str = ""
    run: int = 0  # which run the frames belong to (a reset starts the next)
    start: dict | None = None  # per run: the data points, the picture's kind and bounds
    frame: dict | None = None
    points: list = field(default_factory=list)


class Session:
    """One page: at most one training at a time; ``close`` stops it (the page went away)."""

    def __init__(self, sid: str):
        self.id = sid
        self.lock = threading.Lock()
        self.commands = threading.Lock()  # one command of the page's at a time
        self.snap = Snapshot()
        self.worker: threading.Thread | None = None
        self.stop: StopRequest | None = None
        self.paused = threading.Event()
        self.requests: queue.Queue = queue.Queue()
        self.result = None  # (spec, network, splits, history) of the current run
        self.alive = False  # a worker runs (or is about to): requests go through it
        self.painter: FramePainter | None = None
        self.key = None  # (spec text, DataChoice) of the current run
        self.launched = False
        self.speed = 0.0  # epochs per second at most (0: as fast as training goes)
        self.last_seen = time.monotonic()
        self.streams = 0
        self.frames = 0  # painted in the current run, for the measured update rate
        self.started = 0.0

    # -- the page's commands -----------------------------------------------------------
    def start(self, spec, choice: DataChoice, *, run: bool = True) -> None:
        """Stop any run, build a fresh network for ``spec`` on ``choice`` and show it
        untrained; with ``run``, train it."""
        self.halt()
        dataset = load_choice(choice)
        network, splits, _ = pipeline.prepare_training(spec, dataset)
        painter = FramePainter(network, splits)
        with self.lock:
            self.result = (spec, network, splits, History())
            self.painter, self.key, self.launched = painter, (spec.source.text, choice), False
            self.snap.run += 1
            self.snap.points = []
            self.snap.start = {
                "kind": painter.kind,
                "bounds": getattr(painter, "bounds", None),
                "task": spec.task,
                "classes": network.io.class_names,
                "features": network.io.feature_names,
                "target": network.io.target_names,
                "epochs": spec.train.epochs,
                "data": painter.points(),
            }
            self.frames, self.started = 0, time.perf_counter()
        self._publish(painter, 0.0, "ready")
        if run:
            self.launch()

    def same_run(self, spec, choice: DataChoice) -> bool:
        """Whether ``spec`` on ``choice`` is what the current run trains."""
        return self.result is not None and self.key == (spec.source.text, choice)

    def resumable(self) -> bool:
        """Whether the current run can go on: not started yet, or paused."""
        return self.result is not None and (not self.launched or self.paused.is_set())

    def mark_stopped(self) -> None:
        if self.result is not None and self.snap.state in ("running", "paused", "ready"):
            self._set_state("stopped", "stopped")

    def launch(self) -> None:
        """Train the current run: start its worker, or let a paused one go on."""
        if self.alive:
            self.resume()
            return
        if self.result is None or self.launched:
            return
        self.launched = True
        self.paused.clear()
        self.stop = StopRequest()
        self.alive = True
        self.frames, self.started = 0, time.perf_counter()
        self.worker = threading.Thread(
            target=self._train,
            args=(self.painter, self.stop),
            name=f"playground-{self.id[:6]}",
            daemon=True,
        )
        self._set_state("running")
        self.worker.start()

    def set_speed(self, speed: object) -> None:
        """Epochs per second at most: a number from 0 (no limit) to 10,000."""
        try:
            value = float(speed)
        except (TypeError, ValueError):
            value = -1.0
        if not 0 <= value <= 10_000:
            raise ValueError(f"speed: expected 0 to 10000 epochs a second, got {speed!r}")
        self.speed = value

    def pause(self) -> None:
        if self.alive:
            self.paused.set()
            self._set_state("paused")

    def resume(self) -> None:
        if self.alive:
            self.paused.clear()
            self._set_state("running")

    def halt(self) -> None:
        """Stop the run, if any, and wait for its thread (it stops after its current step)."""
        worker, stop = self.worker, self.stop
        if worker is None:
            return
        if stop is not None:
            stop.set()
        self.paused.clear()
        worker.join(timeout=30)
        self.worker = None

    close = halt

    def call(self, fn):
        """``fn()`` at a moment when the weights stand still: in the worker between two
        steps while a run is alive, else here."""
        with self.lock:
            if not self.alive:
                return fn()
            done: Future = Future()
            self.requests.put((fn, done))
        return done.result(timeout=REQUEST_SECONDS)

    def updates_per_second(self) -> float:
        with self.lock:
            seconds = time.perf_counter() - self.started
            return self.frames / seconds if seconds > 0 else 0.0

    # -- the worker ----------------------------------------------------------------------
    def _serve_requests(self) -> None:
        while True:
            try:
                fn, done = self.requests.get_nowait()
            except queue.Empty:
                return
            try:
                done.set_result(fn())
            except BaseException as e:  # noqa: BLE001  handed to the request that asked
                done.set_exception(e)

    def _train(self, painter: FramePainter, stop: StopRequest) -> None:
        spec, network, splits, history = self.result
        n = len(splits.train.x)
        batches = -(-n // min(spec.train.batch_size, n))
        last = [time.perf_counter()]
        deadline = time.perf_counter() + MAX_TRAIN_SECONDS
        timed_out = []
        epoch_started = [time.perf_counter()]

        def on_epoch(row: dict) -> None:
            history.epochs.append(row)

        def on_batch(epoch: int, batch: int) -> None:
            self._serve_requests()
            now = time.perf_counter()
            if now - last[0] >= FRAME_SECONDS:
                last[0] = now
                state = "paused" if self.paused.is_set() else "running"
                self._publish(painter, epoch + (batch + 1) / batches, state)
            if now > deadline:
                timed_out.append(True)
                stop.set()
            if batch == batches - 1:
                # The speed limit: a lecture wants to watch the regions move, not a blink.
                if self.speed > 0:
                    wait = epoch_started[0] + 1 / self.speed - time.perf_counter()
                    if wait > 0:
                        time.sleep(min(wait, 1.0))
                epoch_started[0] = time.perf_counter()
            while self.paused.is_set() and not stop:
                self._serve_requests()
                time.sleep(0.02)

        state, message = "done", ""
        try:
            fitted = loop.fit(
                network,
                splits.train,
                splits.val,
                progress=False,
                stop=stop,
                on_batch=on_batch,
                on_epoch=on_epoch,
            )
            # fit's own History has the same rows; early stopping's verdict is in it.
            history.stopped_early, history.best_epoch = fitted.stopped_early, fitted.best_epoch
            if history.stopped_early:
                message = f"stopped early (best epoch {history.best_epoch})"
        except TrainingInterrupted:
            state = "stopped"
            if timed_out:
                message = f"stopped at the playground's limit of {MAX_TRAIN_SECONDS:.0f} s a run"
        except NnspecError as e:  # divergence: the weights are the last good ones
            state, message = "error", str(e)
        except Exception as e:  # noqa: BLE001  shown on the page rather than lost in a log
            state, message = "error", f"{type(e).__name__}: {e}"
        finally:
            with self.lock:
                # From here on `call` runs requests itself; those queued before are run below.
                self.alive = False
            self._serve_requests()
        if state != "stopped" or timed_out:  # a halt (reset, page gone) shows nothing more
            self._publish(painter, float(history.epochs_run), state, message)

    def _publish(self, painter: FramePainter, epoch: float, state: str, message: str = ""):
        frame = {"epoch": round(epoch, 3), "metrics": painter.metrics(), **painter.paint()}
        with self.lock:
            snap = self.snap
            snap.frame, snap.state, snap.message = frame, state, message
            snap.points.append({"epoch": frame["epoch"], **frame["metrics"]})
            snap.seq += 1
            self.frames += 1

    def _set_state(self, state: str, message: str = "") -> None:
        with self.lock:
            self.snap.state, self.snap.message = state, message
            self.snap.seq += 1

    def read(self, since_seq: int, since_point: int, run: int) -> tuple[dict | None, int, int, int]:
        """What changed after ``since_seq``: an event for the page (None: nothing new), and
        the seq, point count and run it brings the reader to."""
        with self.lock:
            snap = self.snap
            if snap.seq == since_seq:
                return None, since_seq, since_point, run
            event = {"state": snap.state, "message": snap.message, "run": snap.run}
            if snap.run != run:
                event["start"] = snap.start
                since_point = 0
            event["frame"] = snap.frame
            event["points"] = snap.points[since_point:]
            return event, snap.seq, len(snap.points), snap.run

    def export_parts(self):
        """(spec, network, splits, history) of the current run, or None before any."""
        return self.result
