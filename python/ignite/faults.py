"""Fault injection for the crash-safety tests: `IGNITE_FAULT` (comma-separated names) makes the
named point in the code misbehave on purpose, so a test can prove the run notices. Unset, as in
production, every point is one environment lookup that does nothing."""
from __future__ import annotations

import os

# The points that exist, so that a typo in a test fails instead of testing nothing.
POINTS = frozenset({
    "npy-header-rows",  # a finished .npy's header claims one row fewer, just before its rename
    "die-after-finish",  # the process dies once the outputs are installed, before the work folder goes
    "slow-commit",  # each commit takes 0.2 s longer (a slow disk), so a test's kill lands mid-run
})


def active(name: str) -> bool:
    assert name in POINTS, name
    names = os.environ.get("IGNITE_FAULT")
    return bool(names) and name in names.split(",")
