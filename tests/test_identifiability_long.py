"""Chapter 04's long experiment: the stored result the page reads, and a shortened rerun of
its first checkpoint (`mmnb.worlds.identifiability.long`)."""

import json

import pytest
import torch

from mmnb.worlds import identifiability as world
from mmnb.worlds.identifiability import long

STORED = long.ROOT / long.STORED


@pytest.fixture(scope="module")
def stored():
    return long.load()


def test_the_stored_long_run_is_complete(stored):
    records, meta = stored
    cfg = world.IdentifiabilityConfig.from_profile("book")
    prov = meta["provenance"]
    assert prov["command"].startswith("python -m mmnb.worlds.identifiability.long")
    assert prov["seed"] == 0 and prov["commit"] and prov["date"]
    runs = [tuple(r) for r in prov["runs"]]
    assert runs == list(long.RUNS)
    names = {s.name for s in long.long_settings(cfg)}
    assert set(records.setting) == names
    for batch, steps in runs:
        marks = {m for m in (long.EVERY * 2**k for k in range(20)) if m < steps} | {steps}
        run = records[records.batch == batch]
        assert set(run.steps) == marks
        assert len(run) == len(marks) * len(names) * prov["ids"]
    assert records[["c", "s", "s_tilde", "m1", "m2", "c_mod2", "oracle"]].notna().all().all()
    timing = meta["timing"]
    assert sum(t["cpu_seconds"] for t in timing) <= 15 * 60  # one core, at most 15 minutes
    assert [(t["batch"], t["steps"]) for t in timing] == runs


@pytest.fixture
def one_thread():
    """One thread, as the stored run (MMNB_THREADS=1): tiny batches spin otherwise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_shortened_rerun_repeats_the_first_checkpoint(stored, one_thread):
    records, meta = stored
    cfg = world.IdentifiabilityConfig.from_profile("book")
    main = long.long_settings(cfg)[0]
    batch = long.RUNS[0][0]
    rerun = long.long_experiment(
        seed=meta["provenance"]["seed"],
        runs=[(batch, long.EVERY)],
        ids=1,
        settings=[main],
    )
    new = rerun["records"][0]
    old = records[
        (records.batch == batch)
        & (records.steps == long.EVERY)
        & (records.setting == main.name)
        & (records["replica id"] == 0)
    ].iloc[0]
    # the same replica alone instead of in a group: equal up to float rounding, which a
    # thousand Adam steps amplify a little
    for key in ("c", "s", "m1", "c_mod2", "oracle"):
        assert new[key] == pytest.approx(old[key], abs=0.03), key
    assert json.loads(STORED.read_text())["provenance"]["runs"]
