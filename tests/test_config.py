"""World configs: defaults are the book profile, paper overrides, one validation."""

import dataclasses
from typing import ClassVar

import pytest

from mmnb.config import WorldConfig, knob
from mmnb.ranges import LEARNING_RATE, STEPS, WIDTH, Range


@dataclasses.dataclass(frozen=True)
class ToyConfig(WorldConfig):
    PAPER: ClassVar[dict] = {"n": 10_000, "hidden": (256, 256)}

    n: int = knob(100, Range(2, 100_000))  # samples
    lr: float = knob(0.1, LEARNING_RATE)  # learning rate
    kind: str = knob("cosine", ("cosine", "gauss"))  # similarity
    learn: bool = knob(True)  # learn τ
    hidden: tuple = knob((64,), WIDTH)  # hidden widths
    tau: float | None = knob(None, Range(0.01, 10.0), kind=float)  # fixed τ or None
    steps: int = knob(10, STEPS)  # optimizer steps

    def check(self) -> None:
        if self.kind == "gauss" and self.n < 10:
            raise ValueError(f"n={self.n} must be at least 10 with kind='gauss'")


def test_defaults_are_the_book_profile_and_paper_overrides_them():
    book = ToyConfig.from_profile("book")
    assert book == ToyConfig() and book.hidden == (64,)
    paper = ToyConfig.from_profile("paper", lr=None, learn=False)
    assert (paper.profile, paper.n, paper.hidden, paper.lr, paper.learn) == (
        "paper",
        10_000,
        (256, 256),
        0.1,
        False,
    )
    assert ToyConfig.from_profile("book", hidden=[8, 8]).hidden == (8, 8)
    assert ToyConfig.knobs() == [
        "theory_checks",
        "n",
        "lr",
        "kind",
        "learn",
        "hidden",
        "tau",
        "steps",
    ]
    assert ToyConfig.from_parameters({"profile": "paper", "lr": 0.5, "other": 1}).lr == 0.5
    assert ToyConfig().as_dict()["hidden"] == [64]


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"n": 1}, r"n=1 is out of range; allowed: an integer in \[2, 100000\]"),
        ({"n": 2.5}, "n=2.5 must be an integer"),
        ({"n": True}, "n=True must be an integer"),
        ({"lr": float("nan")}, "lr=nan is not finite"),
        ({"lr": float("inf")}, "lr=inf is not finite"),
        ({"lr": "0.1"}, "lr='0.1' must be a finite number"),
        ({"kind": "dot"}, r"kind='dot' is not allowed; choose one of \['cosine', 'gauss'\]"),
        ({"learn": 1.5}, "learn=1.5 is not allowed"),
        ({"hidden": [8, 0]}, r"hidden\[1\]=0 is out of range"),
        ({"hidden": 8}, "hidden=8 must be a list"),
        ({"tau": 0.0}, "tau=0.0 is out of range"),
        ({"kind": "gauss", "n": 5}, "n=5 must be at least 10"),
        ({"steps": 0}, r"steps=0 is out of range; allowed: an integer in \[1, 200000\]"),
        ({"hidden": [4097]}, r"hidden\[0\]=4097 is out of range; .* in \[1, 4096\]"),
        ({"m": 3}, r"unknown parameter\(s\) \['m'\]"),
    ],
)
def test_bad_values_name_the_field_and_the_allowed_values(knobs, message):
    with pytest.raises(ValueError, match=message):
        ToyConfig.from_profile("book", **knobs)


def test_unknown_profile_and_frozen_fields():
    with pytest.raises(ValueError, match=r"profile='fast'.*\['book', 'paper'\]"):
        ToyConfig.from_profile("fast")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ToyConfig().n = 3
    with pytest.raises(ValueError, match="lr=-1"):
        ToyConfig().replace(lr=-1)


def test_a_knob_allows_a_range_or_a_tuple_of_choices():
    with pytest.raises(TypeError, match="choices"):
        knob("a", "abc")
    with pytest.raises(TypeError, match="choices"):
        knob("a", {"a", "b"})  # a set would list the choices in no fixed order
    with pytest.raises(TypeError, match="Range or a tuple"):
        knob(3, 1e-6)
    with pytest.raises(TypeError, match="a Range bounds numbers"):
        knob(True, Range(0, 1))
    with pytest.raises(TypeError, match="kind"):
        knob(None, Range(0, 1))


def test_meanings_come_from_the_comments_beside_the_fields():
    meanings = ToyConfig.meanings()
    assert list(meanings) == ToyConfig.knobs()
    assert meanings["n"] == "samples" and meanings["tau"] == "fixed τ or None"
    assert meanings["theory_checks"].startswith("stop the chapter")  # the comment above


def test_table_shows_value_book_default_allowed_and_meaning():
    table = ToyConfig.from_profile("paper").table()
    assert list(table.columns) == ["value", "book", "allowed", "meaning"]
    assert table.loc["n", "value"] == 10_000 and table.loc["n", "book"] == 100
    assert table.loc["kind", "allowed"] == "cosine | gauss"
    assert table.loc["n", "allowed"] == "[2, 100000]"
    both = ToyConfig().table(ToyConfig())
    assert len(both) == len(table)  # a second config's shared settings appear once
