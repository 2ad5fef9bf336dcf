"""The install under test is the locked one: ``requirements.lock`` pins every distribution of bdc[test].

A fresh machine installs with ``-c requirements.lock`` (README, .ci/run), so it gets what CI tested.
These tests fail when the installed versions drift from the lock, when the lock misses a dependency
of this install, or when pyproject's ranges no longer admit the locked versions. Refresh the lock with
``scripts/refresh_lock.sh``.

A lock line is skipped only when it carries an environment marker that is false here (a pin for
another platform); the lock made on Linux x86_64 has none, so every pin is checked. The coverage
check walks the installed dependency tree with this machine's markers: a platform-specific package
(a CUDA build's nvidia-* wheels, say) is reported as outside the lock, which is the truth.
"""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
REFRESH = "refresh it with scripts/refresh_lock.sh, or reinstall with `pip install -c requirements.lock -e '.[test]'`"


def lock_pins() -> dict[str, Requirement]:
    pins: dict[str, Requirement] = {}
    for n, line in enumerate(LOCK.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==", f"requirements.lock:{n}: {line!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = req
    return pins


def dependency_closure(root: str = "bdc", extras: tuple[str, ...] = ("test",)) -> dict[str, str]:
    """{distribution: who requires it} for every installed requirement reachable from ``root[extras]``."""
    found: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(root, extras, "")]
    while todo:
        name, extras_, parent = todo.pop()
        key = canonicalize_name(name)
        found.setdefault(key, parent)
        for extra in ("", *extras_):
            if (key, extra) in seen:
                continue
            seen.add((key, extra))
            try:
                requires = md.requires(name) or []
            except md.PackageNotFoundError:
                continue  # reported by the version test
            for r in requires:
                req = Requirement(r)
                if req.marker is None or req.marker.evaluate({"extra": extra}):
                    todo.append((req.name, tuple(req.extras), key))
    found.pop(canonicalize_name(root))
    return found


def test_installed_versions_are_the_locked_ones() -> None:
    drift = []
    for name, req in sorted(lock_pins().items()):
        if req.marker is not None and not req.marker.evaluate():
            continue  # a pin for another platform
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            drift.append(f"{name}: locked {req.specifier}, not installed")
            continue
        if not req.specifier.contains(have, prereleases=True):
            drift.append(f"{name}: locked {req.specifier}, installed {have}")
    assert not drift, "installed versions drift from requirements.lock (" + REFRESH + "):\n  " + "\n  ".join(drift)


def test_the_lock_covers_every_dependency_of_this_install() -> None:
    pins = lock_pins()
    missing = [
        f"{name} (required by {parent})" for name, parent in sorted(dependency_closure().items()) if name not in pins
    ]
    assert not missing, (
        "requirements.lock misses dependencies of bdc[test] (" + REFRESH + "):\n  " + "\n  ".join(missing)
    )


def test_pyproject_ranges_admit_the_locked_versions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = lock_pins()
    wrong = []
    for line in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        req = Requirement(line)
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            wrong.append(f"{req.name}: in pyproject, not in the lock")
            continue
        version = str(next(iter(pin.specifier)).version)
        if not req.specifier.contains(version, prereleases=True):
            wrong.append(f"{req.name}: pyproject wants {req.specifier}, the lock has {version}")
    assert not wrong, "pyproject and requirements.lock disagree (" + REFRESH + "):\n  " + "\n  ".join(wrong)
