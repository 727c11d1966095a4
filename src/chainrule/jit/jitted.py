"""The jitted function: a cache of staged signatures, and eager calls where staging cannot go.

A call's signature (:mod:`.signature`) picks its cache entry. A new signature is traced: the
call runs eagerly (its results are exactly the engine's) while the tracer listens, and the
record is staged. The second call of that signature is traced again and must have made the
same circuit with the same constants (else something outside chainrule changes from call to
call, which staged code would freeze); from the third call on the staged code runs. A signature
that cannot be staged runs eagerly from then on, after one warning naming the reason and the
line (``strict=True`` raises :class:`JitError` instead).
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine import is_anomaly_enabled, is_grad_enabled
from .build import Entry, Fingerprint, Unstageable, build_entry
from .errors import JitError, JitWarning
from .signature import Call, CallReader
from .tracer import Tracer, call_traced, detached

__all__ = ["Jitted"]


_ENTRIES_PER_SIGNATURE = 4  # guard states kept per signature (train/eval, ...)


@dataclass
class _Slot:
    """The cache's state for one signature."""

    entries: list[Entry] = field(default_factory=list)  # staged, one per guard state
    checked: bool = False  # traced twice with the same fingerprint
    pending: Fingerprint | None = None  # the first trace's, until the second
    eager: str | None = None  # why this signature runs eagerly


class Jitted:
    """``fn`` staged per signature (see :func:`chainrule.jit`); call it as ``fn``."""

    def __init__(self, fn: Callable, *, strict: bool = False, cache_size: int = 8) -> None:
        if not callable(fn):
            raise TypeError(f"cr.jit needs a function, got {type(fn).__name__}")
        if int(cache_size) < 1:
            raise ValueError(f"cr.jit: cache_size must be at least 1, got {cache_size}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self._reader = CallReader(fn)
        self._lock = threading.RLock()
        self.strict = bool(strict)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple, _Slot] = OrderedDict()
        self._last: Entry | None = None
        self._warned_retrace = False
        self.traces = 0  #: calls traced (each new signature is traced twice)
        self.staged_calls = 0  #: calls that ran the staged code
        self.eager_calls = 0  #: calls run eagerly untraced (unstageable signatures, anomaly mode)
        self.evictions = 0  #: signatures dropped from the full cache

    @property
    def source(self) -> str:
        """The staged code of the signature staged most recently."""
        if self._last is None:
            raise RuntimeError(
                f"cr.jit: {self.__name__} has no staged code yet (a signature is staged when it "
                "is first called, and checked on its second call)"
            )
        return self._last.source

    def __repr__(self) -> str:
        return (
            f"<jitted {self.__name__}: {len(self._cache)} signature(s), {self.traces} trace(s), "
            f"{self.staged_calls} staged call(s), {self.eager_calls} eager call(s)>"
        )

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if is_anomaly_enabled():  # staged code would skip the check of every gate
            self.eager_calls += 1
            return self.fn(*args, **kwargs)
        call = self._reader.read(args, kwargs)
        with self._lock:  # one call at a time: staged code writes into buffers of its own
            slot = self._cache.get(call.key)
            if slot is not None:
                self._cache.move_to_end(call.key)
                if slot.eager is not None:
                    self.eager_calls += 1
                    return self.fn(*args, **kwargs)
                if slot.checked:
                    for entry in slot.entries:
                        if entry.guards_hold():
                            self.staged_calls += 1
                            return entry.run(call)
            else:
                slot = self._slot(call.key)
            return self._trace(slot, call, args, kwargs)

    def _slot(self, key: tuple) -> _Slot:
        if len(self._cache) >= self.cache_size:
            self._cache.popitem(last=False)
            self.evictions += 1
            if not self._warned_retrace:
                self._warned_retrace = True
                warnings.warn(
                    f"cr.jit: {self.__name__} has been called with more than {self.cache_size} "
                    "signatures and is traced again each time one returns (shapes, dtypes or "
                    "Python arguments keep changing); pass changing numbers as arrays, or raise "
                    "cache_size",
                    JitWarning,
                    stacklevel=3,
                )
        slot = self._cache[key] = _Slot()
        return slot

    def _trace(self, slot: _Slot, call: Call, args: tuple, kwargs: dict) -> Any:
        """Run the call eagerly under the tracer, then stage (or check) its signature."""
        tracer = Tracer(strict=self.strict, inference=not is_grad_enabled())
        self.traces += 1
        result, frame = call_traced(self.fn, args, kwargs, tracer)
        try:
            entry, fingerprint = build_entry(self.fn, call, result, tracer, frame)
        except Unstageable as err:
            self._give_up(slot, str(err))
            entry = None
        finally:
            del frame
        if tracer.inference:  # as the call returns under no_grad: tensors outside any circuit
            result = detached(result)
        if entry is None:
            return result
        if slot.checked:  # the modules changed mode (or parameters): one more entry
            slot.entries = [*slot.entries[-(_ENTRIES_PER_SIGNATURE - 1) :], entry]
        elif slot.pending is None:
            slot.pending = fingerprint
            slot.entries = [entry]
        else:
            why = slot.pending.differs(fingerprint)
            if why is not None:
                self._give_up(slot, why)
                return result
            slot.checked, slot.pending, slot.entries = True, None, [entry]
        self._last = entry
        return result

    def _give_up(self, slot: _Slot, why: str) -> None:
        slot.eager, slot.entries, slot.pending = why, [], None
        message = f"cr.jit: {self.__name__} runs eagerly for this signature: {why}"
        if self.strict:
            raise JitError(message)
        warnings.warn(message, JitWarning, stacklevel=4)
