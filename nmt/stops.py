"""How a run stops early: signals caught between updates, and the exception that reports an early stop."""
from __future__ import annotations

import signal
import threading


class TrainingStopped(Exception):
    """The run stopped early by a signal (last.pt saved) or by divergence; `exit_code` for a command line."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Signals:
    """While active (in the main thread), SIGINT and SIGTERM only set `caught`; the trainer stops after the
    update in progress and saves last.pt. A second signal acts at once (the previous handlers are back)."""

    def __init__(self):
        self.caught, self._previous = 0, {}

    def __enter__(self) -> "Signals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._catch)
        return self

    def _catch(self, signum, _frame) -> None:
        self.caught = signum
        self.__exit__()

    def __exit__(self, *_exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
