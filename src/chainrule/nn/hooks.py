"""Module hooks with PyTorch's semantics: forward pre-hooks, forward hooks, full backward hooks.

A hook is a function registered on a module; registering returns a :class:`RemovableHandle`
whose ``remove()`` takes it off again. Hooks run in registration order (``prepend=True`` puts one
first); a hook that returns something other than None replaces what it was given (the input, the
output, or the gradients).

Backward hooks read the one record like everything else: while a module with backward hooks
runs, its tensor inputs pass through an identity gate made *before* the module's own gates and
its output through one made *after* them. The sweep visits gates latest-made first, so the output
gate sees the complete gradient on the output (``grad_output``) before any of the module's gates
run, and the input gate sees the complete gradients on the inputs (``grad_input``) after all of
them ran. Their ``backward`` is the identity, apart from calling the hooks. (Tensor hooks,
``Tensor.register_hook``, fire per value; a module's hook needs all its inputs' gradients at
once, which one gate over all of them gives.) A module without hooks pays four truth tests per
call.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..engine import Node, RemovableHandle, is_grad_enabled
from ..gate import Gate

__all__ = ["add_hook", "call_with_hooks"]


def add_hook(hooks: OrderedDict, entry: Any, prepend: bool, what: str) -> RemovableHandle:
    """Register ``entry`` (a hook, or a (hook, with_kwargs) pair) in ``hooks``."""
    hook = entry[0] if isinstance(entry, tuple) else entry
    if not callable(hook):
        raise TypeError(f"{what}: the hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = entry
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


class _BackwardCall:
    """What one call of a module with backward hooks shares between its input and output gates."""

    __slots__ = ("module", "slots", "stashed", "grad_output", "inputs_gate")

    def __init__(self, module: Any, slots: list) -> None:
        self.module = module
        self.inputs_gate: Any = None
        self.slots = slots  # per positional argument: the input node wrapped, or None
        self.stashed: dict[int, Any] = {}
        self.grad_output: tuple = ()

    def call_hooks(self, grad_input: list) -> list:
        """Run the full backward hooks on ``grad_input`` (one entry per positional argument)."""
        module = self.module
        for hook in list(module._backward_hooks.values()):
            result = hook(module, tuple(grad_input), self.grad_output)
            if result is not None:
                grad_input = _replacement(result, grad_input, module, "grad_input")
        return grad_input


def _shape(grad: Any) -> tuple:
    return getattr(grad, "shape", ())


def _replacement(result: Any, original: list, module: Any, what: str) -> list:
    """Check a backward hook's returned gradients against the ones it was given."""
    name = type(module).__name__
    if not isinstance(result, (tuple, list)) or len(result) != len(original):
        raise ValueError(
            f"backward hook on {name}: must return None or a tuple of {len(original)} "
            f"{what} entr{'y' if len(original) == 1 else 'ies'}, got {result!r:.80}"
        )
    new = []
    for k, (got, had) in enumerate(zip(result, original)):
        if isinstance(got, Node):
            got = got.data
        if (got is None) != (had is None) or (got is not None and _shape(got) != _shape(had)):
            expected = "None" if had is None else f"a gradient of shape {_shape(had)}"
            found = "None" if got is None else f"shape {_shape(got)}"
            raise ValueError(
                f"backward hook on {name}: {what}[{k}] must be {expected}, got {found}"
            )
        new.append(got)
    return new


class BackwardHookInputs(Gate):
    """Identity on the module's first wrapped input; its other wrapped inputs are further gate
    inputs, so this one gate hands every input its (possibly replaced) gradient at once."""

    name = "backward_hook"
    symbol = "hook"

    @staticmethod
    def forward(ctx: Any, x: Any, *others: Any, call: _BackwardCall) -> Any:
        return x

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple:
        call = ctx.options["call"]
        wrapped = ctx.inputs
        grads = [grad] + [
            call.stashed.get(k, None) for k in range(1, len(wrapped))
        ]  # a missing stash: the module did not use that input; it gets zeros, as in PyTorch
        grads = [g if g is not None else _zeros(wrapped[k], grad) for k, g in enumerate(grads)]
        grad_input, at = [None] * len(call.slots), {}
        for position, node in enumerate(call.slots):
            if node is not None:
                at[position] = len(at)
                grad_input[position] = grads[at[position]]
        grad_input = call.call_hooks(grad_input)
        return tuple(grad_input[position] for position in at)


class BackwardHookStash(Gate):
    """Identity on a further wrapped input: its gradient is kept for :class:`BackwardHookInputs`
    (which passes it on after the hooks), so none flows through here."""

    name = "backward_hook"
    symbol = "hook"

    @staticmethod
    def forward(ctx: Any, x: Any, *, call: _BackwardCall, index: int) -> Any:
        return x

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple:
        ctx.options["call"].stashed[ctx.options["index"]] = grad
        return (None,)


class BackwardHookOutput(Gate):
    """Identity on the module's output: runs the backward pre-hooks on ``grad_output`` and, when
    no input needs a gradient, the full backward hooks (with ``grad_input`` all None, as
    PyTorch). Its second input, the input gate's output, receives zeros so that gate always runs
    once the module's gates are done."""

    name = "backward_hook"
    symbol = "hook"

    @staticmethod
    def forward(ctx: Any, y: Any, *inputs_gate: Any, call: _BackwardCall) -> Any:
        return y

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple:
        call = ctx.options["call"]
        module = call.module
        grad_output = [grad]
        for hook in list(module._backward_pre_hooks.values()):
            result = hook(module, tuple(grad_output))
            if result is not None:
                grad_output = _replacement(result, grad_output, module, "grad_output")
        call.grad_output = tuple(grad_output)
        if len(ctx.inputs) == 1:
            call.call_hooks([None] * len(call.slots))
            return (grad_output[0],)
        return grad_output[0], _zeros(ctx.inputs[1], grad)


def _zeros(node: Any, grad: Any) -> Any:
    """Zeros as ``node``'s gradient: a constant node under create_graph (``grad`` is a node
    then), where a raw array would be refused as leaving chainrule."""
    zeros = node._zeros_like()
    return node._constant(zeros) if isinstance(grad, Node) else zeros


def call_with_hooks(module: Any, args: tuple, kwargs: dict) -> Any:
    """Run ``module(*args, **kwargs)`` through its forward pre-hooks, its forward, its forward
    hooks and, if it has any, its backward hooks; PyTorch's order."""
    pre_hooks = module._forward_pre_hooks
    for hook, with_kwargs in list(pre_hooks.values()) if pre_hooks else ():
        if with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise TypeError(
                        f"forward pre-hook on {type(module).__name__} (with_kwargs=True) must "
                        f"return None or an (args, kwargs) pair, got {type(result).__name__}"
                    )
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    call = None
    if (module._backward_hooks or module._backward_pre_hooks) and is_grad_enabled():
        args, call = _wrap_inputs(module, args)
    output = module.forward(*args, **kwargs)
    hooks = module._forward_hooks
    for hook, with_kwargs in list(hooks.values()) if hooks else ():
        result = hook(module, args, kwargs, output) if with_kwargs else hook(module, args, output)
        if result is not None:
            output = result
    if call is not None:
        output = _wrap_output(module, output, call)
    return output


def _wrap_inputs(module: Any, args: tuple) -> tuple[tuple, _BackwardCall]:
    slots = [a if isinstance(a, Node) and a.requires_grad else None for a in args]
    call = _BackwardCall(module, slots)
    wrapped = [a for a in slots if a is not None]
    if not wrapped:
        return args, call
    first = BackwardHookInputs.apply(*wrapped, call=call)
    call.inputs_gate = first
    new_args, index = list(args), 0
    for position, node in enumerate(slots):
        if node is not None:
            new_args[position] = (
                first if index == 0 else BackwardHookStash.apply(node, call=call, index=index)
            )
            index += 1
    return tuple(new_args), call


def _wrap_output(module: Any, output: Any, call: _BackwardCall) -> Any:
    if not isinstance(output, Node):
        raise TypeError(
            f"{type(module).__name__} has backward hooks but returned a "
            f"{type(output).__name__}; full backward hooks need a module that returns one "
            "tensor"
        )
    if not output.requires_grad:
        return output
    first = call.inputs_gate
    if first is None:
        return BackwardHookOutput.apply(output, call=call)
    return BackwardHookOutput.apply(output, first, call=call)
