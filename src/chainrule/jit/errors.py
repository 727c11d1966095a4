"""What ``cr.jit`` says when it cannot stage: a warning (it runs eagerly) or, with
``strict=True``, an error."""

from __future__ import annotations

from ..stage.code import StageError

__all__ = ["JitError", "JitWarning"]


class JitWarning(UserWarning):
    """A jitted function runs eagerly for a signature (the reason is in the message), or keeps
    being traced again because its signatures keep changing."""


class JitError(StageError):
    """``cr.jit(fn, strict=True)`` met something it cannot stage."""
