"""Every world's config builds in both profiles, and its theory_checks knob is inherited."""

from __future__ import annotations

import pytest

from mmnb.config import WorldConfig
from mmnb.worlds import CHAPTERS, chapter_configs


def _configs() -> list[type[WorldConfig]]:
    """Every chapter's configs, as the registry names them."""
    return [cls for chapter in CHAPTERS for cls in chapter_configs(chapter)]


CONFIGS = _configs()


def test_every_world_has_a_config() -> None:
    assert len(CONFIGS) >= 7, [c.__name__ for c in CONFIGS]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("profile", ["book", "paper"])
def test_config_builds_in_both_profiles(cls: type[WorldConfig], profile: str) -> None:
    cfg = cls.from_profile(profile)
    assert cfg.profile == profile and cfg.theory_checks is True
    assert set(cls.PAPER) <= set(cls.knobs()), "PAPER names only knobs"
    for name, value in cls.PAPER.items():
        expected = tuple(value) if isinstance(value, list) else value
        assert getattr(cfg, name) == (expected if profile == "paper" else getattr(cls(), name))
    assert cls.from_profile(profile, theory_checks=False).theory_checks is False
