"""``chainrule serve``: the circuit explorer as a local web page; type an expression, explore it.

    chainrule serve                       # http://127.0.0.1:8000/, the notes' neuron
    chainrule serve "(x + y) * z" --at x=-2 y=5 z=-4 --port 8001

The server binds to 127.0.0.1 (this computer only) unless ``--host`` says otherwise, with a
warning. Expressions are parsed by the safe parser (never evaluated); each request gets a time
limit, at most ``--workers`` run at once, and errors show in the page.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from typing import Any

from ..expr import ExpressionError, parse
from .explain import UsageError, _assignments


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the circuit explorer as a local web page",
        description="Serve the circuit explorer on this computer: type an expression, change "
        "inputs with number fields or sliders (chainrule recomputes in Python), step the "
        "backward pass. Needs the explore extra (pip install 'chainrule[explore]').",
    )
    parser.add_argument(
        "expression", nargs="?", help="the expression to open (default: the notes' neuron)"
    )
    parser.add_argument(
        "--at", nargs="+", default=[], metavar="NAME=NUMBER", help="its inputs' values (default 1)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this computer only; 0.0.0.0 shares the "
        "page with your network, e.g. a classroom)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds of computing per request (default 10)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="requests computed at once (default 2)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit code."""
    try:
        import uvicorn

        from ..explore.server import DEFAULT_EXPRESSION, RequestError, create_app
    except ImportError as exc:
        print(
            f"chainrule serve: needs the explore extra ({exc.name} is missing): "
            "pip install 'chainrule[explore]'",
            file=sys.stderr,
        )
        return 2
    if not 0 < args.port < 65536:
        print(f"chainrule serve: --port must be from 1 to 65535, got {args.port}", file=sys.stderr)
        return 2
    if not 0 < args.timeout <= 600 or not 1 <= args.workers <= 64:
        print(
            "chainrule serve: --timeout must be in (0, 600] and --workers in 1..64", file=sys.stderr
        )
        return 2
    try:
        expression = args.expression or DEFAULT_EXPRESSION
        names = parse(expression).names
        values = _assignments(args.at)
        for name in values:
            if name not in names:
                raise UsageError(f"--at {name}: '{name}' does not appear in the expression")
        inputs = None if args.expression is None and not values else values
        app = create_app(expression, inputs, workers=args.workers, limit_s=args.timeout)
    except (UsageError, ExpressionError, RequestError) as exc:
        print(f"chainrule serve: {exc}", file=sys.stderr)
        return 2
    if not _loopback(args.host):
        print(
            f"chainrule serve: warning: listening on {args.host}, so other computers on your "
            "network can open this page; use the default 127.0.0.1 to keep it private",
            file=sys.stderr,
        )
    try:
        sock = _listen(args.host, args.port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"chainrule serve: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr
        )
        return 1
    print(
        f"chainrule serve: http://{_url_host(args.host)}:{args.port}/  (Ctrl-C to stop)", flush=True
    )
    with sock:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, so that a busy port is one clear error before the
    server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
