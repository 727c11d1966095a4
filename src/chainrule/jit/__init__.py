"""``cr.jit``: staged speed without asking, for every training step.

``@cr.jit`` on a function that computes a loss and calls ``backward()`` (a training step) makes
later calls run the step as staged NumPy code (:mod:`chainrule.stage`): the forward stages and
the recorded backward of every gate, straight-line, with buffers allocated once. Parameters are
read live at each call (an optimizer step between calls is seen) and gradients reach ``.grad``
as eager backward puts them there, so optimizers work unchanged. ``.source`` is the generated
code, readable like ``cr.stage``'s.

Modules: ``signature`` (what a staged version is specialised to), ``tracer`` (listening to an
eager call), ``build`` (staging it, replaying its effects, comparing two traces), ``jitted`` (the
cache and the fallbacks), ``errors``.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import JitError, JitWarning
from .jitted import Jitted

__all__ = ["JitError", "JitWarning", "Jitted", "jit"]


def jit(
    fn: Callable | None = None, *, strict: bool = False, cache_size: int = 8
) -> Jitted | Callable[[Callable], Jitted]:
    """Stage ``fn`` per signature, as ``jax.jit`` and ``torch.compile`` do (decorator or call).

    The first call with a signature (the shapes and dtypes of its array and tensor arguments,
    its other arguments' values, the grad mode) runs ``fn`` eagerly while tracing it and stages
    the record; the second call is traced again to check that nothing outside chainrule changes
    between calls; later calls run the staged code. ``cache_size`` signatures are kept (the
    least recently used is dropped, with one :class:`JitWarning` when that starts happening);
    ``traces``, ``staged_calls`` and ``eager_calls`` count what happened.

    What cannot be staged (a traced value read as a Python number, ``.grad`` read or assigned
    inside ``fn``, ``backward(create_graph=True)``, an array computed with NumPy that changes
    from call to call) makes that signature run eagerly after one :class:`JitWarning` naming
    the reason and the line; with ``strict=True`` a :class:`JitError` is raised instead.

    Staged calls return new tensors that do not require grad (the backward already ran inside
    ``fn``). Modules called by ``fn`` are guarded: switching ``train()``/``eval()`` or replacing
    a parameter or a layer stages again, and a module with hooks makes the signature run eagerly
    (staged code would not call them). In anomaly mode (``cr.detect_anomaly``) calls run
    eagerly, so that every gate is checked. Arrays computed with NumPy inside ``fn`` from things
    other than its arguments and parameters are constants of the staged code.
    """
    if fn is None:
        return lambda f: Jitted(f, strict=strict, cache_size=cache_size)
    return Jitted(fn, strict=strict, cache_size=cache_size)
