"""Claims: how a chapter states, decides, records and shows what it checks.

A chapter states every check as a `Claim` on a `Claims` board:

    board = mmnb.Claims("01_snr", paper="Huang et al. (2024)")
    board.prediction(
        "ood_acc_multi", "multimodal learning generalizes out of distribution",
        acc_multi, ">=", 0.9, rule="t95", source="spec", cite="Thm 4.4",
        control="control_ood_gap",
    )
    board.control("control_ood_gap", ..., control_gap, "<=", 0.15, rule="t95", source="spec")
    mmnb.save_metrics(output_dir, metrics, cfg, claims=board)  # record first ...
    board.decide(cfg.theory_checks)  # ... then decide

Kinds (`KINDS`):

- **prediction**: the paper's result (cite it); names at least one control by name, or
  `NO_CONTROL` ("no control yet");
- **control**: the same statistic where a premise of the theory is violated, with the
  opposite expected outcome; it must be able to come out either way;
- **identity**: a check of the code (closed forms, exact invariances, bounds that hold by
  construction, Monte Carlo identities with a tolerance of a stated number of standard
  errors);
- **finding**: measured, not predicted (recorded; a threshold, if given, is only shown);
- **failed forecast**: a prediction fixed in advance that a run contradicted, kept with
  its threshold and shown failing with the chapter's explanation.

Rules over replicas (`RULES`):

- ``"all"``: every replica's value clears the threshold;
- ``"t95"``: the one-sided 95% Student-t bound of the mean clears it (the lower bound for
  ``>=``, the upper bound for ``<=``); it needs at least two replicas, and with fewer the
  claim is ``undecided``.

A comparison of two models is one claim on the paired per-replica differences (`paired`)
with a margin as threshold. Verdicts: ``holds``, ``fails``, ``undecided`` (too few
replicas) and ``recorded`` (a finding without a threshold). `decide` stops the chapter
(raises `ClaimsFailed`) when a prediction, control or identity fails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DECISIVE",
    "KINDS",
    "NO_CONTROL",
    "OPS",
    "RULES",
    "Claim",
    "Claims",
    "ClaimsFailed",
    "paired",
    "t_bound",
]

KINDS = ("prediction", "control", "identity", "finding", "failed forecast")
DECISIVE = ("prediction", "control", "identity")  # kinds whose failure stops the chapter
RULES = ("all", "t95")
OPS = (">=", "<=")
NO_CONTROL = "no control yet"
VERDICTS = ("holds", "fails", "undecided", "recorded")


class ClaimsFailed(AssertionError):
    """A prediction, control or identity did not hold (the message lists every one)."""


def _values(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    a = np.atleast_1d(np.asarray(values, dtype=float)).ravel()
    if a.size == 0:
        raise ValueError("a claim needs at least one value")
    return a


def paired(a: Any, b: Any) -> np.ndarray:
    """Per-replica differences a − b of two models measured on the same replicas."""
    a, b = _values(a), _values(b)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same replicas: {a.size} against {b.size}")
    return a - b


def t_bound(values: Any, op: str, level: float = 0.95) -> float:
    """The one-sided `level` Student-t bound of the mean that `op` is tested against.

    The lower bound for ``>=`` (the mean is above it with probability `level`), the upper
    bound for ``<=``; NaN with fewer than two values or any value not finite.
    """
    a = _values(values)
    if a.size < 2 or not np.isfinite(a).all():
        return math.nan
    from scipy.stats import t

    half = t.ppf(level, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size)
    return float(a.mean() - half if op == ">=" else a.mean() + half)


def _clears(x: float, op: str, threshold: float) -> bool:
    return bool(x >= threshold) if op == ">=" else bool(x <= threshold)


@dataclass(frozen=True)
class Claim:
    """One checked statement: its values over replicas, the rule and threshold that decide it."""

    name: str  # the metric key
    statement: str  # one line, in words
    kind: str  # one of KINDS
    values: tuple[float, ...]  # per replica (one value when there are no replicas)
    op: str | None = None  # ">=" or "<="; None for a finding without a threshold
    threshold: float | None = None
    rule: str = "all"  # one of RULES
    source: str = ""  # where the threshold comes from
    cite: str = ""  # the paper's result (predictions)
    control: tuple[str, ...] = ()  # the controls of a prediction, or (NO_CONTROL,)
    note: str = ""  # e.g. the explanation of a failed forecast
    flips: str = ""  # controls: which prediction's statistic this is, with a premise violated

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def spread(self) -> float:
        """The standard deviation over replicas (0 for one value)."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    @property
    def statistic(self) -> float:
        """The number the rule compares: the worst replica (`all`) or the t bound (`t95`)."""
        if self.op is None:
            return self.mean
        a = np.asarray(self.values)
        if self.rule == "t95":
            return t_bound(a, self.op)
        return float(a.min() if self.op == ">=" else a.max())

    @property
    def verdict(self) -> str:
        if self.op is None:
            return "recorded"
        if not np.isfinite(self.values).all():
            return "fails"  # a NaN or an infinity never clears a threshold
        if self.rule == "t95" and len(self.values) < 2:
            return "undecided"
        return "holds" if _clears(self.statistic, self.op, self.threshold) else "fails"

    @property
    def holds(self) -> bool | None:
        """True or False once decided; None for a finding without threshold or undecided."""
        return {"holds": True, "fails": False}.get(self.verdict)

    @property
    def stops(self) -> bool:
        """Whether this claim stops the chapter under `theory_checks`."""
        return self.kind in DECISIVE and self.verdict == "fails"

    def rule_text(self) -> str:
        if self.op is None:
            return "measured"
        if self.rule == "t95":
            return f"95% t bound of the mean {self.op} {self.threshold:g}"
        which = "every replica" if len(self.values) > 1 else "the value"
        return f"{which} {self.op} {self.threshold:g}"

    def value_text(self, digits: int = 3) -> str:
        n = len(self.values)
        if n == 1:
            return f"{self.mean:.{digits}g}"
        return f"{self.mean:.{digits}g} ± {self.spread:.2g} (n={n})"

    def record(self) -> dict[str, Any]:
        """The JSON record of this claim (as in `metrics.json`)."""

        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "name": self.name,
            "statement": self.statement,
            "kind": self.kind,
            "values": [num(v) for v in self.values],
            "mean": num(self.mean),
            "op": self.op,
            "threshold": num(self.threshold),
            "rule": self.rule,
            "statistic": num(self.statistic),
            "source": self.source,
            "cite": self.cite,
            "control": list(self.control),
            "flips": self.flips,
            "note": self.note,
            "verdict": self.verdict,
            "holds": self.holds,
        }


def _check(claim: Claim) -> None:
    where = f"claim {claim.name!r}"
    if claim.kind not in KINDS:
        raise ValueError(f"{where}: kind {claim.kind!r} is not one of {KINDS}")
    if claim.rule not in RULES:
        raise ValueError(f"{where}: rule {claim.rule!r} is not one of {RULES}")
    if (claim.op is None) != (claim.threshold is None):
        raise ValueError(f"{where}: give both a comparison and a threshold, or neither")
    if claim.op is not None and claim.op not in OPS:
        raise ValueError(f"{where}: comparison {claim.op!r} is not one of {OPS}")
    if claim.op is None and claim.kind != "finding":
        raise ValueError(f"{where}: a {claim.kind} needs a comparison and a threshold")
    if claim.threshold is not None and not math.isfinite(claim.threshold):
        raise ValueError(f"{where}: the threshold must be a finite number")
    if claim.kind in DECISIVE + ("failed forecast",) and not claim.source:
        raise ValueError(f"{where}: say where the threshold comes from (source=...)")
    if claim.kind == "prediction" and not claim.control:
        raise ValueError(f"{where}: a prediction names its control(s), or NO_CONTROL")
    if claim.kind == "failed forecast" and not claim.note:
        raise ValueError(f"{where}: a failed forecast carries its explanation (note=...)")


@dataclass
class Claims:
    """The claims of one chapter, in the order stated."""

    chapter: str  # the notebook's name, e.g. "01_snr"
    paper: str = ""  # the paper the predictions cite
    claims: list[Claim] = field(default_factory=list)

    def add(
        self,
        kind: str,
        name: str,
        statement: str,
        values: Any,
        op: str | None = None,
        threshold: float | None = None,
        *,
        rule: str = "all",
        source: str = "",
        cite: str = "",
        control: str | Sequence[str] = (),
        note: str = "",
        flips: str = "",
    ) -> Claim:
        """State one claim (see the module for kinds and rules) and return it."""
        previous = next((i for i, c in enumerate(self.claims) if c.name == name), None)
        if previous is not None and (
            self.claims[previous].kind,
            self.claims[previous].statement,
        ) != (kind, statement):
            raise ValueError(f"claim {name!r} is stated twice")
        controls = (control,) if isinstance(control, str) else tuple(control)
        claim = Claim(
            name=name,
            statement=statement,
            kind=kind,
            values=tuple(float(v) for v in _values(values)),
            op=op,
            threshold=None if threshold is None else float(threshold),
            rule=rule,
            source=source,
            cite=cite,
            control=controls,
            note=note,
            flips=flips,
        )
        _check(claim)
        if previous is None:
            self.claims.append(claim)
        else:  # the same claim again: a cell run twice in Jupyter replaces its claim
            self.claims[previous] = claim
        return claim

    def prediction(self, name: str, statement: str, values: Any, op: str, threshold: float,
                   **kw: Any) -> Claim:  # fmt: skip
        """The paper's result (`cite=`), with its `control=` (a name or NO_CONTROL)."""
        return self.add("prediction", name, statement, values, op, threshold, **kw)

    def control(self, name: str, statement: str, values: Any, op: str, threshold: float,
                **kw: Any) -> Claim:  # fmt: skip
        """A prediction's statistic where a premise is violated (`flips=` the prediction)."""
        return self.add("control", name, statement, values, op, threshold, **kw)

    def identity(self, name: str, statement: str, values: Any, op: str, threshold: float,
                 **kw: Any) -> Claim:  # fmt: skip
        """A check of the code."""
        return self.add("identity", name, statement, values, op, threshold, **kw)

    def finding(self, name: str, statement: str, values: Any, op: str | None = None,
                threshold: float | None = None, **kw: Any) -> Claim:  # fmt: skip
        """Measured, not predicted: recorded and shown, never stops the chapter."""
        return self.add("finding", name, statement, values, op, threshold, **kw)

    def failed_forecast(self, name: str, statement: str, values: Any, op: str,
                        threshold: float, **kw: Any) -> Claim:  # fmt: skip
        """A prediction fixed in advance that the runs contradicted (`note=` why)."""
        return self.add("failed forecast", name, statement, values, op, threshold, **kw)

    def __getitem__(self, name: str) -> Claim:
        for claim in self.claims:
            if claim.name == name:
                return claim
        raise KeyError(f"no claim {name!r}; stated: {[c.name for c in self.claims]}")

    def __iter__(self) -> Iterable[Claim]:
        return iter(self.claims)

    def __len__(self) -> int:
        return len(self.claims)

    def check_controls(self) -> None:
        """Raise a `ValueError` when a prediction names a control that is not stated."""
        controls = {c.name for c in self.claims if c.kind == "control"}
        for claim in self.claims:
            missing = [n for n in claim.control if n != NO_CONTROL and n not in controls]
            if missing:
                raise ValueError(f"claim {claim.name!r} names controls {missing} not stated")

    def records(self) -> list[dict[str, Any]]:
        """Every claim's JSON record, for `metrics.json`."""
        self.check_controls()
        return [c.record() for c in self.claims]

    def failing(self) -> list[Claim]:
        """The predictions, controls and identities that did not hold."""
        return [c for c in self.claims if c.stops]

    def table(self) -> Any:
        """The claims as one table: statement, kind, value ± spread, rule, verdict."""
        import pandas as pd

        rows = []
        for c in self.claims:
            kind = c.kind
            if c.kind == "prediction" and NO_CONTROL in c.control:
                kind += f" ({NO_CONTROL})"
            rows.append(
                {
                    "claim": c.name,
                    "statement": c.statement,
                    "kind": kind,
                    "value": c.value_text(),
                    "rule": c.rule_text(),
                    "verdict": c.verdict,
                }
            )
        return pd.DataFrame(rows).set_index("claim")

    def scoreboard(self) -> Any:
        """The short table of the book's "What the runs show" page (no claim keys, so that
        it fits the page): the paper's result, statement, kind, value and verdict."""
        table = self.table()[["statement", "kind", "value", "verdict"]].reset_index(drop=True)
        table.insert(0, "paper", [c.cite or self.paper for c in self.claims])
        return table.style.hide(axis="index")

    def show(self) -> Any:
        """Show the claims table and glue it (`claims_table`, `claims_scoreboard`)."""
        from mmnb.glue import glue

        glue("claims_scoreboard", self.scoreboard(), display=False)
        counts = {v: sum(c.verdict == v for c in self.claims) for v in VERDICTS}
        for key, n in counts.items():
            glue(f"claims_{key}", n, display=False)
        glue("claims_stated", len(self.claims), display=False)
        table = self.table()
        glue("claims_table", table)
        return None

    def decide(self, theory_checks: bool = True) -> None:
        """Stop the chapter, after its claims were recorded, if a decisive claim failed.

        With `theory_checks` off the failures are printed and the chapter goes on.
        """
        self.check_controls()
        failing = self.failing()
        if not failing:
            print(f"{len(self.claims)} claims stated; every prediction, control and identity holds")
            return
        lines = [
            f"- {c.name} ({c.kind}): {c.statement}; {c.rule_text()}, got "
            f"{c.statistic:.4g} (values {', '.join(f'{v:.4g}' for v in c.values)})"
            for c in failing
        ]
        message = f"{len(failing)} claim(s) of {self.chapter} did not hold:\n" + "\n".join(lines)
        if theory_checks:
            raise ClaimsFailed(message)
        print(message + "\n(theory_checks=False: recorded, not stopping)")
