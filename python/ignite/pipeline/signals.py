"""SIGINT/SIGTERM during a run: stop reading and commit what is in flight, or exit at once on
a second signal (the last commit holds)."""
from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM before the pipeline ran; the CLI exits 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


class StopSignals:
    """SIGINT and SIGTERM. Before the pipeline runs, the first raises Interrupted. While it runs,
    the first asks it to stop reading and commit the windows in flight. While the outputs are
    being finished it is noted and finishing goes on. A second signal exits at once, with
    os._exit: the last commit holds, so nothing needs cleaning up."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.phase = "setup"  # setup | pipeline | finishing

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def enter_pipeline(self) -> None:
        """From here a signal stops the run gracefully. A signal caught during setup may have been
        swallowed on its way up: pybind11 turns an exception raised inside an extension's import
        into ImportError, which a fallback then catches. It is raised again here."""
        if self.signum is not None:
            raise Interrupted(self.signum)
        self.phase = "pipeline"

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            os.write(2, f"ignite: second {name}: exiting now; the last commit holds, rerun with --resume\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        if self.phase == "setup":
            # A subclass, not KeyboardInterrupt itself: CPython exits by SIGINT (status -2, not
            # 128 + signum) once a bare KeyboardInterrupt has left any nested code evaluation,
            # even when the CLI catches it afterwards.
            raise Interrupted(signum)
        self.event.set()
        if self.phase == "pipeline":
            log.warning("%s: committing the windows in flight, then stopping (send it again to stop at once)", name)
        else:
            log.warning("%s: finishing the outputs first (send it again to stop at once)", name)
