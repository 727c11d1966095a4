"""Module and Parameter: PyTorch's container semantics over chainrule tensors.

A :class:`Module` registers the :class:`Parameter` and sub-module values assigned to its
attributes, so ``parameters()``, ``state_dict()`` and ``zero_grad()`` find them by walking the
tree. Names and shapes follow ``torch.nn``, so a state dict moves between the two libraries as a
mapping of plain arrays.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..tensor import Tensor
from .hooks import RemovableHandle, add_hook, call_with_hooks

__all__ = ["IncompatibleKeys", "Module", "Parameter", "StateDictError"]


def _array(value: Any) -> np.ndarray:
    """A parameter's array, or a buffer (already an array)."""
    return value.data if isinstance(value, Tensor) else value


def _buffer_array(value: Any, name: str) -> np.ndarray:
    array = np.array(_array(value))
    if array.dtype.kind not in "fiub":
        raise TypeError(f"buffer {name!r}: expected a numeric array, got dtype {array.dtype}")
    return array


class StateDictError(ValueError):
    """A state dict does not fit a module: missing, unexpected or mis-shaped entries."""


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped: keys the module has and the dict lacks,
    and keys the dict has and the module lacks."""

    missing_keys: list
    unexpected_keys: list


class Parameter(Tensor):
    """A tensor that is a module's learnable state: floating point and always requiring grad.

    The data is copied (as ``torch.nn.Parameter(torch.tensor(x))`` would), so the module owns it
    and optimizers may update it in place. ``state_name`` is its name in the state dict of the
    module tree it was last attached to (``'0.weight'``; None until attached): diagrams and
    explanations call it by that name.
    """

    __slots__ = ()

    def __init__(self, data: Any, name: str | None = None) -> None:
        array = np.array(data.data if isinstance(data, Tensor) else data)
        if array.dtype.kind in "iub":
            array = array.astype(np.float64)
        super().__init__(array, requires_grad=True, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


_HOOK_DICTS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")


class Module:
    """Base class of layers and models: subclass it, assign parameters and sub-modules as
    attributes in ``__init__``, and define ``forward``; call the module to run it."""

    #: Set by ``cr.jit`` while it traces a call: told of each module called (to guard on it).
    _call_observer: Callable[[Module], None] | None = None

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        for hooks in _HOOK_DICTS:
            object.__setattr__(self, hooks, OrderedDict())

    # --- registration ----------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() was called (call "
                "super().__init__() first in your module's __init__)"
            )
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            params[name] = value
            self._name_parameters()
        elif isinstance(value, Module):
            params.pop(name, None)
            self._modules[name] = value
            self._name_parameters()
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} as parameter {name!r} of "
                    f"{type(self).__name__} (a cr.nn.Parameter or None is expected)"
                )
            params[name] = None
        elif name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} as sub-module {name!r} of "
                    f"{type(self).__name__} (a cr.nn.Module or None is expected)"
                )
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", ()):
            value = self._buffer_value(name, value)
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, for an absent optional parameter such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter({name!r}): expected a cr.nn.Parameter or None, got "
                f"{type(param).__name__}"
            )
        self._parameters[name] = param
        object.__setattr__(self, name, param)
        self._name_parameters()

    def _buffer_value(self, name: str, value: Any) -> np.ndarray | None:
        """What assigning ``value`` to buffer ``name`` stores. A value of the buffer's shape and
        dtype is copied into the buffer's own array (``bn.num_batches_tracked += 1`` keeps it
        too), so code holding the array (a staged step) sees it; another shape or dtype
        replaces it."""
        current = self._buffers[name]
        if value is None or value is current:
            return value
        array = _buffer_array(value, name)
        if current is None or array.shape != current.shape or array.dtype != current.dtype:
            return array
        np.copyto(current, array)
        return current

    def register_buffer(self, name: str, value: Any) -> None:
        """Register ``value`` (an array, or None) as state that is not learned, such as batch
        norm's running statistics: saved in the state dict, never given to an optimizer."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: name must be non-empty and have no '.', got {name!r}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: {name!r} is already a parameter or sub-module")
        self._buffers[name] = None if value is None else _buffer_array(value, name)
        object.__setattr__(self, name, self._buffers[name])

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every buffer of this module and its descendants, with dotted names."""
        for mname, module in self.named_modules():
            for bname, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{mname}.{bname}" if mname else bname), buf

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child called ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): {type(module).__name__} is not a Module")
        if not name or "." in name:
            raise KeyError(
                f"add_module: module name must be non-empty and have no '.', got {name!r}"
            )
        self._parameters.pop(name, None)
        self._modules[name] = module
        object.__setattr__(self, name, module)
        self._name_parameters()

    def _name_parameters(self) -> None:
        """Give every parameter below this module its state-dict name (``Parameter.state_name``),
        again each time the tree grows: a parent attached later renames them from its root."""
        for name, param in self.named_parameters():
            param.state_name = name

    # --- running ---------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation the module performs; every subclass defines it."""
        raise TypeError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if Module._call_observer is not None:  # cr.jit is tracing: it guards on this module
            Module._call_observer(self)
        if (
            self._forward_hooks
            or self._forward_pre_hooks
            or self._backward_hooks
            or self._backward_pre_hooks
        ):
            return call_with_hooks(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # --- hooks (PyTorch's semantics; see chainrule.nn.hooks) -------------------------------------
    def register_forward_pre_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward; a non-None result replaces the
        positional arguments (a non-tuple is wrapped in one). With ``with_kwargs`` it is called
        as ``hook(module, args, kwargs)`` and may return an ``(args, kwargs)`` pair."""
        return add_hook(
            self._forward_pre_hooks, (hook, with_kwargs), prepend, "register_forward_pre_hook"
        )

    def register_forward_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward (``hook(module, args, kwargs,
        output)`` with ``with_kwargs``); a non-None result replaces the output."""
        return add_hook(self._forward_hooks, (hook, with_kwargs), prepend, "register_forward_hook")

    def register_full_backward_pre_hook(
        self, hook: Callable, *, prepend: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` when the gradient on the module's output is
        complete, before the module's own gates run backward; a non-None result (a tuple)
        replaces ``grad_output``."""
        return add_hook(self._backward_pre_hooks, hook, prepend, "register_full_backward_pre_hook")

    def register_full_backward_hook(
        self, hook: Callable, *, prepend: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` once the gradients on the module's
        positional inputs are complete. ``grad_input`` has one entry per positional argument
        (None where it is not a tensor requiring grad; all None, called when the output's
        gradient is known, if no input requires grad); a non-None result (a tuple) replaces it.
        Gradients are what the sweep carries: NumPy arrays (nodes under ``create_graph``). The
        module must return one tensor."""
        return add_hook(self._backward_hooks, hook, prepend, "register_full_backward_hook")

    # --- walking the tree ------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules with their attribute names."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        """Direct sub-modules."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, with dotted names ('' for this one)."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{k}" if name else k, m) for k, m in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        """This module and every descendant."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Parameters with dotted names such as ``'0.weight'``; a shared one is listed once."""
        seen = set()
        tree = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mname, module in tree:
            for pname, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{mname}.{pname}" if mname else pname), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter of this module and (with ``recurse``) its descendants."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    # --- modes and gradients ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active) for this module and its descendants; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout is the identity); returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient to None (or to zeros)."""
        for param in self.parameters():
            param.grad = None if set_to_none else np.zeros_like(param.data)

    # --- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter and buffer as a plain array, keyed by dotted name (PyTorch's
        keys)."""
        return {name: np.array(_array(value)) for name, value in self._all_named_parameters()}

    def _all_named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter slot, then buffer, of each module by its full name, shared ones under
        each name (as PyTorch)."""
        stack = [("", self)]
        while stack:
            mname, module = stack.pop()
            for pname, param in module._parameters.items():
                if param is not None:
                    yield (f"{mname}.{pname}" if mname else pname), param
            for bname, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{mname}.{bname}" if mname else bname), buf
            kids = [(f"{mname}.{k}" if mname else k, m) for k, m in module.named_children()]
            stack.extend(reversed(kids))

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy arrays from ``state_dict`` into the parameters, in place.

        Everything is checked before anything is written, so on error the module is unchanged.
        With ``strict`` (the default) missing or unexpected keys are errors; mis-shaped or
        non-numeric entries always are.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict: expected a mapping of names to arrays, got "
                f"{type(state_dict).__name__}"
            )
        own = dict(self._all_named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append("missing key(s): " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            problems.append("unexpected key(s): " + ", ".join(repr(k) for k in unexpected))
        updates = []
        for key, param in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.dtype.kind not in "fiu":
                problems.append(f"{key!r} has dtype {array.dtype}, expected a real number array")
            elif array.shape != param.shape:
                problems.append(
                    f"{key!r} has shape {array.shape} but the parameter has shape {param.shape}"
                )
            else:
                updates.append((param, array))
        if problems:
            raise StateDictError(
                f"error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(problems)
            )
        for param, array in updates:
            np.copyto(_array(param), array, casting="unsafe")
            if isinstance(param, Tensor):
                param._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # --- printing --------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The module's own settings for its repr (e.g. ``in_features=2, out_features=3``)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n" + "\n".join(lines) + "\n)"
