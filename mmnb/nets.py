"""Encoders that hold R independent replicas and run them in one batched pass.

Weights carry a leading replica axis. Replica r of a net built with `seed=s` draws its
initial weights from the stream (s, purpose, r) of `mmnb.runtime.stream`, so it equals
the same replica built alone (`replicas=[r]`): training R replicas together gives the
same weights as R separate runs. `replica_parameter` is the one place where per-replica
parameters are initialised; `encoder_pair` builds the two encoders of a contrastive model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from mmnb.config import check_choice, check_range
from mmnb.runtime import stream

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ReplicaLinear",
    "encoder_pair",
    "replica_ids",
    "replica_parameter",
]

ACTIVATIONS = {  # in place where torch has it: the MLP applies them to its own fresh outputs
    "relu": torch.relu_,
    "gelu": nn.functional.gelu,
    "tanh": torch.tanh_,
    "leaky_relu": nn.functional.leaky_relu_,
    "identity": lambda x: x,
}

Replicas = int | Sequence[int]


def replica_ids(replicas: Replicas) -> list[int]:
    """`replicas` as a list of replica indices: an int R means `0 … R-1`."""
    if isinstance(replicas, int) and not isinstance(replicas, bool):
        check_range("n_replicas", replicas, 1, None, integer=True)
        return list(range(replicas))
    ids = [int(r) for r in replicas]
    if not ids or min(ids) < 0:
        raise ValueError(f"replicas={replicas!r}: need one or more non-negative indices")
    return ids


def replica_parameter(
    init: Callable[[torch.Generator], Tensor],
    replicas: Replicas,
    seed: int,
    purpose: str,
    device: torch.device | str | None = None,
) -> nn.Parameter:
    """Stack `init(generator)` over replicas, replica r drawing from stream (seed, purpose, r).

    `init` draws one replica's tensor on the CPU with the generator it is given.
    """
    values = [init(stream(seed, purpose, r).torch) for r in replica_ids(replicas)]
    return nn.Parameter(torch.stack(values).to(device))


class ReplicaLinear(nn.Module):
    """R independent affine maps `x @ W[r] + b[r]`, initialised like `torch.nn.Linear`.

    Input `[N, in]` (shared by all replicas) or `[R, N, in]`; output `[R, N, out]`.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        replicas: Replicas = 1,
        seed: int = 0,
        purpose: str = "linear",
        bias: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)

        def uniform(*shape: int) -> Callable[[torch.Generator], Tensor]:
            return lambda gen: torch.empty(*shape).uniform_(-bound, bound, generator=gen)

        self.weight = replica_parameter(uniform(in_dim, out_dim), replicas, seed, purpose, device)
        self.bias = (
            replica_parameter(uniform(out_dim), replicas, seed, f"{purpose}/bias", device)
            if bias
            else None
        )

    @property
    def n_replicas(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        out = x @ self.weight if x.ndim == 2 else torch.bmm(x, self.weight)
        return out if self.bias is None else out.add_(self.bias[:, None, :])


class MLP(nn.Module):
    """A multilayer perceptron with R replicas: `in_dim → hidden… → out_dim`.

    `out_widths` (one per replica) keeps only the first `out_widths[r]` output
    coordinates of replica r and sets the others to 0, so replicas with different
    output dimensions train as one batched net of width `out_dim`.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        replicas: Replicas = 1,
        seed: int = 0,
        activation: str = "relu",
        bias: bool = True,
        device: torch.device | str | None = None,
        purpose: str = "mlp",
        out_widths: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        dims = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(
            ReplicaLinear(a, b, replicas, seed, f"{purpose}/layer{i}", bias, device)
            for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=False))
        )
        self.activation = ACTIVATIONS[activation]
        mask = None
        if out_widths is not None:
            widths = torch.as_tensor(list(out_widths))
            if len(widths) != self.n_replicas or widths.min() < 1 or widths.max() > out_dim:
                raise ValueError(
                    f"out_widths={list(out_widths)!r}: need {self.n_replicas} widths in "
                    f"[1, {out_dim}]"
                )
            mask = (torch.arange(out_dim) < widths[:, None]).float()[:, None, :].to(device)
        self.register_buffer("out_mask", mask)

    @property
    def n_replicas(self) -> int:
        return self.layers[0].n_replicas

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x if self.out_mask is None else x * self.out_mask


def encoder_pair(
    x_dim: int,
    y_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    replicas: Replicas = 1,
    seed: int = 0,
    **options: object,
) -> tuple[MLP, MLP]:
    """The two encoders (f for x, g for y) of a contrastive model, from independent streams.

    `options` go to both `MLP`s (activation, device, out_widths, ...).
    """
    f = MLP(x_dim, hidden, out_dim, replicas, seed, purpose="init/encoder_x", **options)
    g = MLP(y_dim, hidden, out_dim, replicas, seed, purpose="init/encoder_y", **options)
    return f, g
