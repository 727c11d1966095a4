"""``chainrule serve``: the explorer as a small local web app (Starlette on uvicorn).

The page posts ``{"expression": ..., "inputs": {name: number}}`` to ``/api/explore`` and gets the
circuit's data back, computed by chainrule in Python. The expression is parsed by the
whitelisting parser of :mod:`chainrule.expr` (never evaluated, its size limits kept); requests
and bodies are bounded: at most ``workers`` computations run at once, a request waits at most
``queue_s`` for one of them and gets at most ``limit_s`` of computing; every failure is a JSON
``{"error": "..."}`` with one line of text, never a server traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from threading import Lock
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..draw import GraphvizMissing, GraphvizTimeout
from ..explain import DIGITS
from ..expr import ExpressionError, parse
from .page import asset, served_html
from .subject import MAX_INPUTS, Subject

__all__ = ["DEFAULT_EXPRESSION", "DEFAULT_INPUTS", "MAX_BODY", "Workers", "create_app", "compute"]

DEFAULT_EXPRESSION = "1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))"
"""The notes' 2-D sigmoid neuron, which the page opens with."""
DEFAULT_INPUTS = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
MAX_BODY = 64 * 1024
"""The largest request body accepted, in bytes."""
MAX_ARRAY = 4096
"""The most numbers an array input may hold."""
NEW_INPUT = 1.0
"""The value a name gets when a new expression introduces it."""
_CACHE = 64
_CACHED_STEPS = 200  # larger replies (up to ~1 MB of JSON) are computed again rather than kept


class RequestError(ValueError):
    """A request the explorer cannot answer; ``status`` is the HTTP status to send."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def compute(expression: Any, inputs: Any, digits: int = DIGITS) -> dict:
    """The reply to one request: the data of ``expression`` at ``inputs`` (names the
    expression does not use are dropped, names without a value get ``NEW_INPUT``)."""
    if not isinstance(expression, str) or not expression.strip():
        raise RequestError("type an expression, e.g. (x + y) * z")
    if not isinstance(inputs, dict):
        raise RequestError("inputs must be an object of name: number")
    if len(inputs) > MAX_INPUTS:
        raise RequestError(f"too many inputs ({len(inputs)}; at most {MAX_INPUTS})")
    try:
        parsed = parse(expression)
    except ExpressionError as exc:
        raise RequestError(f"{exc}") from None
    values = {}
    for name in parsed.names:
        values[name] = _input(name, inputs.get(name, NEW_INPUT))
    try:
        data = Subject.from_expression(parsed, values, digits=digits).describe()
    except (GraphvizMissing, GraphvizTimeout) as exc:
        raise RequestError(_one_line(exc), 503) from None
    except (ExpressionError, ValueError, TypeError, ArithmeticError) as exc:
        raise RequestError(_one_line(exc)) from None
    plain = {n: v if isinstance(v, float) else v.tolist() for n, v in values.items()}
    return {"data": data, "inputs": plain, "expression": parsed.text}


def _input(name: str, value: Any) -> float | np.ndarray:
    """A number, or a small array of numbers given as nested lists (the notes' ``W`` and ``x``);
    anything else is refused by name."""
    if isinstance(value, list):
        try:
            array = np.array(value, dtype=float)
        except (TypeError, ValueError):
            raise RequestError(
                f"input '{name}' must be a number or a rectangular list of numbers"
            ) from None
        if array.size > MAX_ARRAY or array.ndim > 4:
            raise RequestError(
                f"input '{name}' is too large ({array.size} numbers; at most {MAX_ARRAY})"
            )
        if not np.isfinite(array).all():
            raise RequestError(f"input '{name}' must hold finite numbers")
        return array
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"input '{name}' must be a number, got {json.dumps(value)[:40]}")
    if not math.isfinite(value):
        raise RequestError(f"input '{name}' must be a finite number")
    return float(value)


class Workers:
    """The server's state: a bounded pool of workers, a small cache of replies and the limits."""

    def __init__(
        self, workers: int = 2, limit_s: float = 10.0, queue_s: float = 5.0, digits: int = DIGITS
    ) -> None:
        self.workers = max(1, int(workers))
        self.limit_s = float(limit_s)
        self.queue_s = float(queue_s)
        self.digits = digits
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="chainrule-serve")
        self._slots: asyncio.Semaphore | None = None
        self._cache: OrderedDict = OrderedDict()
        self._lock = Lock()

    def close(self) -> None:
        """Stop the workers (waiting for none of them)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def cached(self, expression: str, inputs: dict) -> dict:
        key = json.dumps([expression, inputs], sort_keys=True)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        reply = compute(expression, inputs, self.digits)
        if len(reply["data"]["steps"]) > _CACHED_STEPS:
            return reply
        with self._lock:
            self._cache[key] = reply
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return reply

    async def run(self, expression: Any, inputs: Any) -> dict:
        """``compute`` in a worker thread, within the queue and time limits."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        slots = self._slots
        try:
            await asyncio.wait_for(slots.acquire(), timeout=self.queue_s)
        except asyncio.TimeoutError:
            raise RequestError("the server is busy; try again in a moment", 503) from None
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self.cached, expression, inputs)
        # the slot is freed when the computation ends, even one that ran past the time limit
        future.add_done_callback(lambda _: slots.release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=self.limit_s)
        except asyncio.TimeoutError:
            raise RequestError(
                f"this circuit took longer than {self.limit_s:g} s to compute; try a smaller one",
                504,
            ) from None


def create_app(
    expression: str = DEFAULT_EXPRESSION,
    inputs: dict | None = None,
    *,
    workers: int = 2,
    limit_s: float = 10.0,
    queue_s: float = 5.0,
    digits: int = DIGITS,
) -> Starlette:
    """The Starlette app: ``/`` (the page, opened on ``expression``), ``/explorer.js``,
    ``/explorer.css`` and ``POST /api/explore``."""
    state = Workers(workers, limit_s, queue_s, digits)
    start = DEFAULT_INPUTS if inputs is None and expression == DEFAULT_EXPRESSION else inputs
    start = {n: v.tolist() if isinstance(v, np.ndarray) else v for n, v in (start or {}).items()}
    first = state.cached(expression, start)

    async def page(request: Request) -> Response:
        initial = {**first, "mode": "live", "error": ""}
        return HTMLResponse(served_html(initial), headers=_NO_STORE)

    async def script(request: Request) -> Response:
        return Response(asset("explorer.js"), media_type="text/javascript", headers=_NO_STORE)

    async def style(request: Request) -> Response:
        return Response(asset("explorer.css"), media_type="text/css", headers=_NO_STORE)

    async def api(request: Request) -> Response:
        try:
            payload = await _read_json(request)
            reply = await state.run(payload.get("expression"), payload.get("inputs", {}))
        except RequestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except Exception as exc:  # never a traceback to the page: one line, logged here too
            message = f"internal error: {type(exc).__name__}: {_one_line(exc)}"
            print(f"chainrule serve: {message}", file=sys.stderr)
            return JSONResponse({"error": message}, status_code=500)
        return JSONResponse(reply)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/explorer.js", script),
            Route("/explorer.css", style),
            Route("/api/explore", api, methods=["POST"]),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
        ],
        lifespan=_closing(state),
    )
    app.state.explorer = state
    return app


_NO_STORE = {"Cache-Control": "no-store"}


def _closing(state: Workers) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.close()

    return lifespan


async def _read_json(request: Request) -> dict:
    """The request's JSON object, read up to ``MAX_BODY`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise RequestError(f"the request is too large (at most {MAX_BODY // 1024} KiB)", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise RequestError(f"the request is too large (at most {MAX_BODY // 1024} KiB)", 413)
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestError("the request is not JSON") from None
    if not isinstance(payload, dict):
        raise RequestError('the request must be a JSON object {"expression": ..., "inputs": ...}')
    return payload


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
