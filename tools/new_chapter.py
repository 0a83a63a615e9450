"""Start a new chapter: a world package and a notebook that pass `make test` as generated.

    python tools/new_chapter.py NAME --number NN --title "A title" [--root DIR]

writes `mmnb/worlds/NAME/` (config, world, fit, measures and `__init__`, a small paired
Gaussian world trained with InfoNCE), `chapters/NN_NAME.ipynb` (setup, parameters, the
config table, one prediction with its control, the Claims section, a Summary, metrics),
`tests/test_NAME.py`, and adds the chapter to the registry (`mmnb/worlds/__init__.py`),
`_toc.yml`, `claims.md` and `api.md`. Replace the template's world and experiment with the
chapter's own; README's "Add a chapter" lists what else a chapter may touch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIG = '''"""Chapter {nn}'s settings: the paired Gaussian world and its encoders' training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, knob
from mmnb.ranges import LEARNING_RATE, STEPS, Range

__all__ = ["{Name}Config"]


@dataclass(frozen=True)
class {Name}Config(WorldConfig):
    """Chapter {nn}'s settings; the defaults are the "book" profile."""

    PAPER: ClassVar[dict] = {{"n_train": 16384, "steps": 2000}}

    shared_dim: int = knob(2, Range(1, 64))  # dimension of the shared latent z
    dim: int = knob(8, Range(1, 1024))  # dimension of each observation
    noise: float = knob(0.5, Range(0.0, 10.0))  # std of the observation noise
    n_train: int = knob(2048, Range(64, 1_000_000))  # training pairs
    n_test: int = knob(256, Range(16, 100_000))  # held-out pairs
    steps: int = knob(300, STEPS)  # optimizer steps
    batch_size: int = knob(128, Range(2, 65_536))  # minibatch size N
    lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate
    embed_dim: int = knob(4, Range(1, 256))  # output dimension of the encoders
'''

WORLD = '''"""Chapter {nn}'s world: two noisy linear views of one shared Gaussian latent.

z ~ N(0, I_k); x = z A + σε and y = z B + σε' with fixed random A, B. With `shared=False`
y is made from an independent latent: nothing links the two modalities (the control).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from mmnb.config import check_choice
from mmnb.runtime import stream
from mmnb.worlds.{name}.config import {Name}Config

__all__ = ["{Name}Sample", "{Name}World"]


@dataclass
class {Name}Sample:
    """`n` pairs (x, y) and the shared latent z."""

    x: Tensor
    y: Tensor
    z: Tensor


class {Name}World:
    """Fixed mixing maps drawn once per seed (stream ``"world/mixing"``); `sample(n,
    purpose)` draws pairs from the stream (seed, purpose)."""

    PURPOSES: ClassVar[tuple[str, ...]] = ("data/train", "data/test")

    def __init__(
        self,
        cfg: {Name}Config,
        seed: int,
        device: torch.device | str = "cpu",
        shared: bool = True,
    ) -> None:
        mixing = stream(seed, "world/mixing", device=device)
        self.mix_x = mixing.randn(cfg.shared_dim, cfg.dim)
        self.mix_y = mixing.randn(cfg.shared_dim, cfg.dim)
        self.cfg, self.seed, self.device, self.shared = cfg, seed, torch.device(device), shared

    def sample(self, n: int, purpose: str = "data/train") -> {Name}Sample:
        """`n` pairs for `purpose`."""
        check_choice("purpose", purpose, self.PURPOSES)
        draw = stream(self.seed, purpose, device=self.device)
        z = draw.randn(n, self.cfg.shared_dim)
        other = z if self.shared else draw.randn(n, self.cfg.shared_dim)
        x = z @ self.mix_x + self.cfg.noise * draw.randn(n, self.cfg.dim)
        y = other @ self.mix_y + self.cfg.noise * draw.randn(n, self.cfg.dim)
        return {Name}Sample(x=x, y=y, z=z)
'''

MEASURES = '''"""Chapter {nn}'s read-outs of trained encoders."""

from __future__ import annotations

from torch import Tensor

from mmnb.probes import topk_retrieval

__all__ = ["retrieval"]


def retrieval(u: Tensor, v: Tensor) -> Tensor:
    """Top-1 retrieval x→y among the held-out pairs, one value per replica."""
    return topk_retrieval(u, v, k=1)
'''

FIT = '''"""Chapter {nn}'s training: linear encoders with the CLIP objective (`mmnb.clip`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mmnb.clip import clip_objective
from mmnb.nets import MLP, Replicas, replica_ids
from mmnb.train import History, train
from mmnb.worlds.{name}.config import {Name}Config
from mmnb.worlds.{name}.measures import retrieval
from mmnb.worlds.{name}.world import {Name}Sample

__all__ = ["{Name}Fit", "fit_encoders"]


@dataclass
class {Name}Fit:
    """Two trained encoders and the training history."""

    f: MLP
    g: MLP
    history: History


def fit_encoders(
    cfg: {Name}Config,
    train_pairs: {Name}Sample,
    test_pairs: {Name}Sample,
    replicas: Replicas,
    seed: int = 0,
    desc: str = "training",
) -> {Name}Fit:
    """Train linear encoders f, g with a learned temperature; the history records the
    loss and, at the end, the held-out top-1 retrieval."""
    ids = replica_ids(replicas)
    run = clip_objective(train_pairs.x, train_pairs.y, [], cfg.embed_dim, ids, seed)

    @torch.no_grad()
    def evaluate() -> dict[str, Tensor]:
        return {{"top1": retrieval(run.f(test_pairs.x), run.g(test_pairs.y))}}

    history = train(
        run.objective,
        run.modules(),
        cfg.steps,
        lr=cfg.lr,
        n_samples=len(train_pairs.x),
        batch_size=cfg.batch_size,
        seed=seed,
        replicas=ids,
        evaluate=evaluate,
        eval_every=cfg.steps,
        desc=desc,
    )
    return {Name}Fit(run.f, run.g, history)
'''

INIT = '''"""Chapter {nn}, {title} (a template world: replace it with the chapter's own).

`World(cfg, seed, device)` draws paired Gaussian views of a shared latent;
`fit_encoders(cfg, train, test, replicas, seed)` trains two encoders with InfoNCE.
"""

from __future__ import annotations

from mmnb.worlds.{name}.config import {Name}Config
from mmnb.worlds.{name}.fit import {Name}Fit, fit_encoders
from mmnb.worlds.{name}.measures import retrieval
from mmnb.worlds.{name}.world import {Name}Sample, {Name}World

__all__ = [
    "CONFIGS",
    "World",
    "fit_encoders",
    "retrieval",
    "{Name}Config",
    "{Name}Fit",
    "{Name}Sample",
    "{Name}World",
]

CONFIGS = ({Name}Config,)
World = {Name}World
'''

TEST = '''"""Chapter {nn}'s world: the protocol, and pairs that share their latent."""

import torch

from mmnb.protocol import World
from mmnb.worlds import {name}


def test_world_keeps_the_protocol_and_its_streams():
    cfg = {name}.{Name}Config()
    world = {name}.World(cfg, 0, "cpu")
    assert isinstance(world, World) and world.PURPOSES
    a, b = world.sample(8, "data/train"), {name}.World(cfg, 0, "cpu").sample(8, "data/train")
    torch.testing.assert_close(a.x, b.x)
    assert not torch.equal(a.x, world.sample(8, "data/test").x)


def test_shared_pairs_are_correlated_and_the_control_is_not():
    cfg = {name}.{Name}Config(noise=0.0, dim=2, shared_dim=1)
    shared = {name}.World(cfg, 0).sample(4000)
    control = {name}.World(cfg, 0, shared=False).sample(4000)
    corr = torch.corrcoef(torch.stack([shared.x[:, 0], shared.y[:, 0]]))[0, 1].abs()
    none = torch.corrcoef(torch.stack([control.x[:, 0], control.y[:, 0]]))[0, 1].abs()
    assert corr > 0.99 and none < 0.1
'''


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": _lines(text)}


def _code(text: str, tags: list[str] | None = None) -> dict:
    meta = {"tags": tags} if tags else {}
    cell = {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": []}
    return {**cell, "source": _lines(text)}


def _lines(text: str) -> list[str]:
    lines = text.strip("\n").split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def notebook(name: str, nn: str, title: str, setup_cell: str) -> dict:
    """The template chapter's notebook (its parameters cell is filled in afterwards)."""
    n = f"{nn}_{name}"
    install = setup_cell[: setup_cell.index("%pip install")]
    install += setup_cell[len(install) :].split("\n", 1)[0]
    setup = f"{install}\n\nimport mmnb\nfrom mmnb.worlds import {name}"
    cells = [
        _code(setup, ["remove-cell"]),
        _md(f"# {int(nn)}. {title}\n\nWhat the chapter shows, in a paragraph."),
        _md("## Parameters"),
        _code(
            'profile = "book"\nseed = 0\nn_seeds = 3\ndevice = "auto"\noutput_dir = ""',
            ["parameters"],
        ),  # fmt: skip
        _code(
            f"cfg = {name}.{name.title().replace('_', '')}Config.from_parameters(globals())\n"
            "dev = mmnb.setup(seed, device, n_seeds=n_seeds, threads=1)\n"
            "# every check of the chapter is a claim on this board\n"
            f'claims = mmnb.Claims("{n}", paper="the chapter\'s paper")'
        ),
        _md(
            "## The experiment\n\nTwo encoders trained on pairs that share a latent, and on "
            "pairs that do not (the control)."
        ),  # fmt: skip
        _code(
            f"fits = {{}}\n"
            "for shared in (True, False):\n"
            f"    world = {name}.World(cfg, seed, dev, shared=shared)\n"
            '    train, test = world.sample(cfg.n_train), world.sample(cfg.n_test, "data/test")\n'
            f"    fits[shared] = {name}.fit_encoders(cfg, train, test, n_seeds, seed)\n"
            'top1 = {k: fit.history.final("top1") for k, fit in fits.items()}\n'
            "chance = 1 / cfg.n_test\n"
            "claims.prediction(\n"
            '    "top1_shared",\n'
            '    "pairs that share a latent are retrieved at least 5× as often as chance",\n'
            "    top1[True],\n"
            '    ">=",\n'
            "    5 * chance,\n"
            '    source="the template\'s bar: 5 × chance",\n'
            '    cite="the chapter\'s paper",\n'
            '    control="top1_independent",\n'
            ")\n"
            "claims.control(\n"
            '    "top1_independent",\n'
            '    "pairs with independent latents are retrieved at most 3× chance",\n'
            "    top1[False],\n"
            '    "<=",\n'
            "    3 * chance,\n"
            '    source="the template\'s bar: 3 × chance",\n'
            '    flips="top1_shared",\n'
            ")"
        ),
        _md(f"(claims-{nn})=\n## Claims\n\nEvery check of the chapter; rule: every replica."),
        _code("claims.show()"),
        _md(f"## Summary\n\nWhat the claims table ({{ref}}`claims-{nn}`) shows held."),
        _code(
            'metrics = {"top1_shared_mean": top1[True].mean()}\n'
            "mmnb.save_metrics(output_dir, metrics, cfg, claims=claims)\n"
            "claims.decide(cfg.theory_checks)"
        ),
    ]
    meta = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def _insert_after(path: Path, anchor: str, text: str) -> None:
    source = path.read_text()
    if text in source:
        return
    if anchor not in source:
        raise ValueError(f"{path}: cannot find {anchor!r} to add the chapter after")
    path.write_text(source.replace(anchor, anchor + text, 1))


def create(name: str, nn: str, title: str, root: Path = ROOT) -> list[Path]:
    """Write the chapter's files under `root` and register it; return the files written."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"name={name!r}: use lower-case letters, digits and underscores")
    if not re.fullmatch(r"\d\d", nn):
        raise ValueError(f"number={nn!r}: two digits, e.g. 07")
    package = root / "mmnb" / "worlds" / name
    stem = f"{nn}_{name}"
    if package.exists() or (root / "chapters" / f"{stem}.ipynb").exists():
        raise ValueError(f"{package} or chapters/{stem}.ipynb exists already")
    Name = name.title().replace("_", "")  # noqa: N806 (the class-name stem)
    values = {"name": name, "Name": Name, "nn": nn, "title": title}
    package.mkdir(parents=True)
    written = []
    for file, template in [
        ("config.py", CONFIG),
        ("world.py", WORLD),
        ("measures.py", MEASURES),
        ("fit.py", FIT),
        ("__init__.py", INIT),
    ]:
        (package / file).write_text(template.format(**values))
        written.append(package / file)
    (root / "tests" / f"test_{name}.py").write_text(TEST.format(**values))
    setup = "".join(json.loads((root / "chapters" / "00_contrastive_learning.ipynb").read_text())
                    ["cells"][0]["source"])  # fmt: skip
    nb_path = root / "chapters" / f"{stem}.ipynb"
    nb_path.write_text(json.dumps(notebook(name, nn, title, setup), indent=1, ensure_ascii=False)
                       + "\n")  # fmt: skip
    written += [root / "tests" / f"test_{name}.py", nb_path]
    registry = root / "mmnb" / "worlds" / "__init__.py"
    source = registry.read_text()
    source = source.replace("\n}\n", f'\n    "{stem}": "{name}",\n}}\n', 1)
    registry.write_text(source)
    _insert_after(root / "_toc.yml", "      - file: chapters/06_five_lenses\n",
                  f"      - file: chapters/{stem}\n")  # fmt: skip
    with (root / "claims.md").open("a") as claims:
        doc = f"chapters/{stem}.ipynb"
        claims.write(
            f"\n## {nn} · {title}\n\n{{ref}}`claims-{nn}`. Of "
            f"{{glue:text}}`{doc}::claims_stated:.0f` claims, "
            f"{{glue:text}}`{doc}::claims_holds:.0f` hold.\n\n"
            f"```{{glue}} claims_scoreboard\n:doc: {doc}\n```\n"
        )
    with (root / "api.md").open("a") as api:
        api.write(f"\n### {stem}: `mmnb.worlds.{name}`\n\n```{{eval-rst}}\n"
                  f".. automodule:: mmnb.worlds.{name}\n```\n")  # fmt: skip
        for file in ("config", "world", "fit", "measures"):
            api.write(f"\n```{{eval-rst}}\n.. automodule:: mmnb.worlds.{name}.{file}\n"
                      "   :members:\n```\n")  # fmt: skip
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the package name, e.g. spectral_gap")
    parser.add_argument("--number", required=True, help="two digits, e.g. 07")
    parser.add_argument("--title", required=True, help="the chapter's title")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    args = parser.parse_args(argv)
    try:
        written = create(args.name, args.number, args.title, args.root)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # the parameters cell and the config table, as for every chapter
    sys.path.insert(0, str(args.root))
    import importlib

    import mmnb.worlds

    importlib.reload(mmnb.worlds)
    sys.path.insert(0, str(args.root / "tools"))
    import set_parameters_cell

    set_parameters_cell.ROOT = args.root
    nb = args.root / "chapters" / f"{args.number}_{args.name}.ipynb"
    nb.write_text(set_parameters_cell.render(nb))
    for path in written:
        print(f"wrote {path.relative_to(args.root)}")
    print("registered in mmnb/worlds/__init__.py, _toc.yml, claims.md and api.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
