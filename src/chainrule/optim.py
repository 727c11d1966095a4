"""Optimizers (SGD with momentum/Nesterov, RMSprop, Adam) and a step learning-rate schedule.

The update rules are PyTorch's, step for step, including how weight decay enters (added to the
gradient, i.e. L2 regularization). Updates happen in place on each parameter's ``.data``;
parameters whose ``.grad`` is None are skipped. Hyper-parameters live in ``param_groups`` (a list
of dicts), so a schedule can change ``lr`` between steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["SGD", "Adam", "Optimizer", "RMSprop", "StepLR"]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class Optimizer:
    """Holds parameter groups and per-parameter state. Subclasses define
    ``_update(data, grad, state, group)``, which changes ``data`` in place."""

    def __init__(self, params: Iterable[Any], defaults: dict) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of tensors (e.g. "
                "model.parameters()), got a single Tensor"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[int, dict] = {}
        seen: set[int] = set()
        for group in groups:
            self.add_param_group(group, seen)

    def add_param_group(self, group: dict, seen: set[int] | None = None) -> None:
        """Add a group of parameters with its own hyper-parameters (defaults fill the rest)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{type(self).__name__}: a parameter group is a dict with 'params'")
        seen = {id(p) for g in self.param_groups for p in g["params"]} if seen is None else seen
        params = list(group["params"])
        for p in params:
            if not isinstance(p, Tensor) or not p.requires_grad or not p.is_leaf:
                raise TypeError(
                    f"{type(self).__name__}: can only optimize leaf tensors that require grad, "
                    f"got {type(p).__name__}"
                    + ("" if not isinstance(p, Tensor) else f" of shape {p.shape}")
                )
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears more than once")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown option(s) {sorted(unknown)} in a parameter group"
            )
        full = {**self.defaults, **group, "params": params}
        self._validate(full)
        full["initial_lr"] = full["lr"]
        self.param_groups.append(full)

    def _validate(self, group: dict) -> None:
        name = type(self).__name__
        _check(group["lr"] >= 0, f"{name}: lr must be non-negative, got {group['lr']}")
        _check(
            group["weight_decay"] >= 0,
            f"{name}: weight_decay must be non-negative, got {group['weight_decay']}",
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (to None, or to zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None if set_to_none else np.zeros_like(p.data)

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            wd = group["weight_decay"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if isinstance(g, Tensor):
                    g = g.data
                if wd:
                    g = g + wd * p.data
                state = self.state.get(id(p))
                if state is None:
                    state = self.state[id(p)] = {"step": 0}
                state["step"] += 1
                self._update(p.data, g, state, group)
                p._bump_version()  # an in-place edit: gates that saved p now refuse

    def state_dict(self) -> dict:
        """PyTorch's layout: ``{"state": {index: {name: value}}, "param_groups": [...]}``, where
        parameters are numbered in group order and each group lists its indices under ``params``.
        Arrays are copies, so the dict is a snapshot."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        state = {
            index[key]: {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in s.items()}
            for key, s in self.state.items()
            if key in index
        }
        groups = [
            {
                **{k: v for k, v in g.items() if k != "params"},
                "params": [index[id(p)] for p in g["params"]],
            }
            for g in self.param_groups
        ]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an optimizer over the same parameters (same
        groups, sizes and shapes). Everything is checked before anything changes."""
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            raise TypeError(
                f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'"
            )
        groups = state_dict["param_groups"]
        params = [p for g in self.param_groups for p in g["params"]]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(
                f"{name}.load_state_dict: the saved groups hold "
                f"{[len(g['params']) for g in groups]} parameters, this optimizer "
                f"{[len(g['params']) for g in self.param_groups]}"
            )
        state: dict[int, dict] = {}
        for i, saved in state_dict["state"].items():
            if not isinstance(i, int) or not 0 <= i < len(params):
                raise ValueError(f"{name}.load_state_dict: no parameter number {i!r}")
            entry = {}
            for k, v in saved.items():
                if isinstance(v, np.ndarray):
                    if v.shape != params[i].shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state {k!r} of parameter {i} has shape "
                            f"{v.shape}, the parameter {params[i].shape}"
                        )
                    v = v.astype(params[i].dtype, copy=True)
                entry[k] = v
            state[id(params[i])] = entry
        updates = []
        for group, saved in zip(self.param_groups, groups, strict=True):
            hyper = {
                k: tuple(v) if isinstance(group.get(k), tuple) else v
                for k, v in saved.items()
                if k != "params"
            }
            if set(hyper) - set(group):
                raise ValueError(
                    f"{name}.load_state_dict: unknown option(s) {sorted(set(hyper) - set(group))}"
                )
            self._validate({**group, **hyper})
            updates.append(hyper)
        for group, hyper in zip(self.param_groups, updates, strict=True):
            group.update(hyper)
        self.state = state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k not in ("params", "initial_lr")):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule: with momentum μ, b = μ b + (1 - dampening) g
    (b = g on the first step), then p -= lr * (g + μ b if nesterov else b)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params,
            {
                "lr": lr,
                "momentum": momentum,
                "dampening": dampening,
                "weight_decay": weight_decay,
                "nesterov": nesterov,
            },
        )

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        _check(
            group["momentum"] >= 0, f"SGD: momentum must be non-negative, got {group['momentum']}"
        )
        _check(
            not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
            "SGD: nesterov momentum needs momentum > 0 and dampening = 0",
        )

    def _update(self, data: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=data.dtype)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        data -= group["lr"] * g


class RMSprop(Optimizer):
    """RMSprop, PyTorch's rule: v = α v + (1 - α) g²; p -= lr * g / (sqrt(v) + eps), optionally
    centered (subtracting the mean gradient's square) and with momentum."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(
            params,
            {
                "lr": lr,
                "alpha": alpha,
                "eps": eps,
                "weight_decay": weight_decay,
                "momentum": momentum,
                "centered": centered,
            },
        )

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        _check(0 <= group["alpha"] <= 1, f"RMSprop: alpha must be in [0, 1], got {group['alpha']}")
        _check(group["eps"] >= 0, f"RMSprop: eps must be non-negative, got {group['eps']}")
        _check(
            group["momentum"] >= 0,
            f"RMSprop: momentum must be non-negative, got {group['momentum']}",
        )

    def _update(self, data: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        alpha = group["alpha"]
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(data)
            if group["momentum"]:
                state["momentum_buffer"] = np.zeros_like(data)
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (g - grad_avg) * (1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            avg = np.sqrt(square_avg) + group["eps"]
        if group["momentum"]:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            data -= group["lr"] * buf
        else:
            data -= group["lr"] * (g / avg)


class Adam(Optimizer):
    """Adam, PyTorch's rule: bias-corrected first and second moment estimates;
    p -= lr / (1 - β₁ᵗ) * m / (sqrt(v) / sqrt(1 - β₂ᵗ) + eps). ``weight_decay`` is L2 (added to
    the gradient), not AdamW's decoupled decay."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        )

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        betas = group["betas"]
        _check(
            len(betas) == 2 and all(0 <= b < 1 for b in betas),
            f"Adam: betas must be two numbers in [0, 1), got {betas}",
        )
        _check(group["eps"] >= 0, f"Adam: eps must be non-negative, got {group['eps']}")

    def _update(self, data: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        beta1, beta2 = group["betas"]
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (g - m) * (1 - beta1)
        v *= beta2
        v += (1 - beta2) * g * g
        t = state["step"]
        step_size = group["lr"] / (1 - beta1**t)
        denom = np.sqrt(v) / np.sqrt(1 - beta2**t) + group["eps"]
        data -= step_size * (m / denom)


class StepLR:
    """Multiply each group's learning rate by ``gamma`` every ``step_size`` calls of ``step()``
    (lr = initial_lr * gamma ** (epoch // step_size), as PyTorch's StepLR)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"StepLR: expected a cr.optim optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(step_size, int) or isinstance(step_size, bool) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        _check(gamma >= 0, f"StepLR: gamma must be non-negative, got {gamma}")
        self.optimizer = optimizer
        self.step_size = step_size
        self.gamma = gamma
        self.last_epoch = 0

    def step(self) -> None:
        """Advance one epoch and set every group's lr."""
        self.last_epoch += 1
        factor = self.gamma ** (self.last_epoch // self.step_size)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def get_last_lr(self) -> list[float]:
        """The current learning rate of each group."""
        return [group["lr"] for group in self.optimizer.param_groups]
