"""Are the lock files up to date with pyproject.toml?

A lock is stale when the dependencies declared in ``pyproject.toml`` (the project's, the ``test`` extra's, or the
build system's) changed since it was resolved, or when a declared requirement is not pinned in it at a version the
declaration allows. ``requirements/update`` re-resolves and then stamps both locks with ``--stamp``; ``.ci/run``
and ``tests/unit/test_lock.py`` fail on a stale lock. Standard library only (``packaging``, when installed, also
checks every pin against its declared range).

    python3.11 requirements/check.py          # exit 1 and a line per problem when stale
    python3.11 requirements/check.py --stamp  # after re-resolving: record what the locks were resolved from
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {"run.lock": ("dependencies",), "test.lock": ("dependencies", "test")}
STAMP = "# resolved from pyproject.toml inputs sha256: "
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)


def declared(parts: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """The requirement strings of pyproject.toml's ``dependencies`` and the named extras, in file order."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out: list[str] = []
    for part in parts:
        out += project["dependencies"] if part == "dependencies" else project["optional-dependencies"][part]
    return out


def inputs_digest(parts: tuple[str, ...], root: Path = ROOT) -> str:
    build = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    text = json.dumps({"requires": declared(parts, root), "build": build}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock_text: str) -> dict[str, str]:
    """Package name (normalised) -> pinned version."""
    return {_norm(m.group(1)): m.group(2) for m in _PIN.finditer(lock_text)}


def problems(root: Path = ROOT) -> list[str]:
    out = []
    for lock, parts in LOCKS.items():
        path = root / "requirements" / lock
        if not path.exists():
            out.append(f"requirements/{lock} is missing: run requirements/update")
            continue
        text = path.read_text(encoding="utf-8")
        if not text.startswith(STAMP + inputs_digest(parts, root)):
            out.append(f"requirements/{lock} was resolved from other dependencies than pyproject.toml declares:"
                       " run requirements/update")
        pinned = pins(text)
        for req in declared(parts, root):
            try:
                from packaging.requirements import Requirement
            except ImportError:  # the stamp alone then
                break
            r = Requirement(req)
            version = pinned.get(_norm(r.name))
            if version is None:
                out.append(f"requirements/{lock}: {r.name} is declared but not pinned")
            elif not r.specifier.contains(version, prereleases=True):
                out.append(f"requirements/{lock}: {r.name}=={version} is outside the declared {r.specifier}")
    return out


def stamp(root: Path = ROOT) -> None:
    for lock, parts in LOCKS.items():
        path = root / "requirements" / lock
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith(STAMP)]
        path.write_text("\n".join([STAMP + inputs_digest(parts, root), *lines]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--stamp"]:
        stamp()
    found = problems()
    print("\n".join(found) if found else "requirements/*.lock are up to date with pyproject.toml")
    sys.exit(1 if found else 0)
