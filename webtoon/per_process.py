"""Objects kept once per process (the job engine's thread pool, the download client): built
on first use, once even when several threads ask together, and built again in a forked
worker, which must not use its parent's threads or sockets."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

_objects: dict[tuple[int, Hashable], object] = {}
_lock = threading.Lock()


def per_process(key: Hashable, build: Callable[[], T]) -> T:
    slot = (os.getpid(), key)
    if (found := _objects.get(slot)) is None:
        with _lock:
            if (found := _objects.get(slot)) is None:
                found = _objects[slot] = build()
    return found  # type: ignore[return-value]
