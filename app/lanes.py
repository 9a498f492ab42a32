"""What the app's work lanes share: a count of admitted places with an idempotent release, and
the niceness of a lane's threads. Renders, zip streams and projections each keep their own."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable


def thread_priority(nice: int) -> None:
    """Run this thread at `nice` (Linux sets nice per thread, and the OpenMP threads torch starts
    from this one inherit it): a pool's initializer. Renders run at 10, so that on a saturated
    machine the event loop still answers cache hits, health checks and job status promptly;
    projections at 15, so renders get the cores first; stream chunks at 19."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


class Places:
    """At most `limit` admitted at once. Used on the event loop only, so checking and counting
    cannot interleave with another request's."""

    def __init__(self, limit: int, busy: Callable[[], Exception]) -> None:
        self.limit = limit
        self.taken = 0
        self._busy = busy

    def take(self) -> Callable[[], None]:
        """Take a place, or raise the lane's busy error. Returns its release, to be called when the
        work ends, however it ends (once or more: only the first call gives the place back)."""
        if self.taken >= self.limit:
            raise self._busy()
        self.taken += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.taken -= 1
        return release
