"""Chapter 04's figure of its generative process."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from mmnb.plots import PALETTE

__all__ = ["multimodal_latent_graph"]


def multimodal_latent_graph(ax: Axes | None = None) -> Axes:
    """Chapter 04's generative process as a graph: latents z, s, s̃, ξ_x, ξ_y (white
    nodes) and the observed pair x, y (shaded), with the optional causal edge z → s
    dashed (the book's notation; the code calls them c, s, s_tilde, m1, m2, x1, x2)."""
    from matplotlib.patches import FancyBboxPatch

    if ax is None:
        ax = plt.subplots(figsize=(7.2, 3.3))[1]
    pos = {"m1": (0, 2), "c": (2, 2.7), "s": (3.2, 2), "st": (4.4, 2), "m2": (6, 2),
           "x1": (1.6, 0), "x2": (4.4, 0)}  # fmt: skip
    colors = {"c": PALETTE[2], "s": PALETTE[3], "st": PALETTE[3], "m1": PALETTE[1],
              "m2": PALETTE[1], "x1": "#555555", "x2": "#555555"}  # fmt: skip
    labels = {"c": "$z$", "s": "$s$", "st": r"$\tilde s$", "m1": r"$\xi_x$",
              "m2": r"$\xi_y$", "x1": "$x$", "x2": "$y$"}  # fmt: skip
    for key, text in labels.items():
        observed = key.startswith("x")
        (x, y), color = pos[key], colors[key]
        box = FancyBboxPatch((x - 0.42, y - 0.28), 0.84, 0.56, ec=color, lw=1.6,
                             boxstyle="round,pad=0.02,rounding_size=0.25",
                             fc=color if observed else "white")  # fmt: skip
        ax.add_patch(box)
        ax.text(x, y, text, ha="center", va="center", fontsize=13,
                color="white" if observed else "black")  # fmt: skip
    edges = [("c", "x1"), ("s", "x1"), ("m1", "x1"), ("c", "x2"), ("st", "x2"), ("m2", "x2"),
             ("s", "st"), ("c", "s")]  # fmt: skip
    for a, b in edges:
        causal = (a, b) == ("c", "s")
        ax.annotate("", xy=pos[b], xytext=pos[a], arrowprops=dict(
            arrowstyle="-|>", lw=1.4, color=PALETTE[4] if causal else "#444444",
            ls="--" if causal else "-", shrinkA=18, shrinkB=18))  # fmt: skip
    ax.text(3.8, 2.35, r"$p_{\mathrm{chg}}$", ha="center", fontsize=10)
    ax.text(2.75, 2.75, r"causal: $s \leftarrow s + Bz + a$", fontsize=9, color=PALETTE[4])
    ax.text(0.55, 0.85, r"$\mathrm{mix}_x$", fontsize=12)
    ax.text(5.15, 0.85, r"$\mathrm{mix}_y$", fontsize=12)
    ax.text(3.0, -0.6, "observed pair (shaded); latents (white)", ha="center", fontsize=9,
            color="#555555")  # fmt: skip
    ax.set(xlim=(-0.6, 6.6), ylim=(-0.85, 3.2))
    ax.axis("off")
    return ax
