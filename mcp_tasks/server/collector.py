"""Garbage collection for a server that holds thousands of open streams.

Why: every open request — a ``subscriptions/listen`` stream, a 2025-11-25 GET stream, a
waiting ``tasks/result`` — keeps ~400 objects the collector tracks alive in the SDK's and the
HTTP stack's request handling. CPython's full collection walks every tracked object, so with
5,000 streams open a replica paused 0.7 to 1.1 s each time (``benchmarks/scale.py``, Python
3.11), several times a minute, and every client's notifications waited that long.

What survives a full collection is alive. Freezing it (:func:`gc.freeze`) right then keeps it
out of later collections: the next full collection walks only what became long-lived since,
so pauses follow the churn, not the number of open streams. The price: an object frozen while
alive that later becomes part of a reference cycle is not reclaimed while it stays frozen.
So every :data:`THAW_SECONDS` the frozen objects are thawed (:func:`gc.unfreeze`) and the next
full collection walks — and reclaims — everything: one long pause per five minutes instead
of one every few seconds under load.

One policy per process, whatever the number of servers in it. A thaw thaws whatever is
frozen, what the host froze itself included (a pre-fork ``gc.freeze()`` for copy-on-write,
say): a host that manages its collector sets ``MCP_TASKS_GC_FREEZE=0``, which leaves it
alone. The policy keys on full collections reporting generation 2 (CPython 3.11-3.13); where
none do, it does no more than the first freeze.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

THAW_SECONDS = 300.0
"""How long objects stay frozen before a full collection walks them again."""


class FrozenHeap:
    """Freezes what is loaded now, then the survivors of every full collection."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._thawed_at = clock()
        self._thawing = False
        self._users = 0

    def start(self) -> None:
        """What is loaded by now (modules, the server, its tools) lives as long as the
        process: freeze it, and freeze each full collection's survivors from now on."""
        self._users += 1
        if self._users == 1:
            gc.freeze()
            gc.callbacks.append(self._collected)

    def stop(self) -> None:
        """The last user gone: stop, and thaw everything frozen."""
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)
            gc.unfreeze()

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        # Called by the collector around each collection; at the end of a full one every
        # tracked object left is reachable, and the young generations are empty.
        if phase != "stop" or info.get("generation") != 2:
            return
        now = self._clock()
        if not self._thawing and now - self._thawed_at >= THAW_SECONDS:
            gc.unfreeze()  # the next full collection walks everything, cycles reclaimed
            self._thawed_at, self._thawing = now, True
            return
        self._thawing = False
        gc.freeze()


HEAP = FrozenHeap()
"""The process's policy (the collector is process-wide)."""
