"""Encoders that hold R independent replicas and run them in one batched pass.

Weights carry a leading replica axis. Replica r of a net built with `seed=s` is
initialised from seed `s + r`, so it equals the single-replica net built with that
seed: training R replicas together gives the same weights as R separate runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmnb.params import check_choice

__all__ = ["ACTIVATIONS", "MLP", "ReplicaLinear"]

ACTIVATIONS = {
    "relu": nn.functional.relu,
    "gelu": nn.functional.gelu,
    "tanh": torch.tanh,
    "leaky_relu": nn.functional.leaky_relu,
    "identity": lambda x: x,
}


class ReplicaLinear(nn.Module):
    """R independent affine maps `x @ W[r] + b[r]`, initialised like `torch.nn.Linear`.

    Input `[N, in]` (shared by all replicas) or `[R, N, in]`; output `[R, N, out]`.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        n_replicas: int = 1,
        seed: int = 0,
        bias: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if n_replicas < 1:
            raise ValueError(f"n_replicas={n_replicas!r} must be at least 1")
        bound = 1.0 / math.sqrt(in_dim)
        weights, biases = [], []
        for r in range(n_replicas):
            gen = torch.Generator().manual_seed(seed + r)
            weights.append(torch.empty(in_dim, out_dim).uniform_(-bound, bound, generator=gen))
            biases.append(torch.empty(out_dim).uniform_(-bound, bound, generator=gen))
        self.weight = nn.Parameter(torch.stack(weights).to(device))
        self.bias = nn.Parameter(torch.stack(biases).to(device)) if bias else None

    @property
    def n_replicas(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            out = x @ self.weight
        else:
            out = torch.bmm(x, self.weight)
        return out if self.bias is None else out + self.bias[:, None, :]


class MLP(nn.Module):
    """A multilayer perceptron with R replicas: `in_dim → hidden… → out_dim`."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        n_replicas: int = 1,
        seed: int = 0,
        activation: str = "relu",
        bias: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        dims = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(
            ReplicaLinear(a, b, n_replicas, seed + 7919 * i, bias, device)
            for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=False))
        )
        self.activation = ACTIVATIONS[activation]

    @property
    def n_replicas(self) -> int:
        return self.layers[0].n_replicas

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x
