"""The public API is closed: every exported name is documented, typed and listed in
docs/embedding.md; modules are private; txtool imports only the public API.

In the style of trio's ``test_exports``: adding a name to ``txengine.__all__`` without a
docstring, annotations or a line in the embedding guide fails here.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import txengine

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(txengine.__file__).parent
GUIDE = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
PUBLIC_MODULES = {"testing", "schema"}


def _methods(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The public methods and properties ``cls`` defines itself (not inherited ones)."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property) and value.fget is not None:
            value = value.fget
        if inspect.isfunction(value):
            yield name, value


def _untyped(fn: Callable[..., Any]) -> list[str]:
    sig = inspect.signature(fn)
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.annotation is inspect.Parameter.empty and p.name not in ("self", "cls")
    ]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _commented(name: str) -> bool:
    """A value (constant, type alias) has a ``#:`` comment right above its definition."""
    pattern = re.compile(rf"^((?:#:.*\n)+){re.escape(name)}\b[^\n=]*=", re.M)
    return any(pattern.search(p.read_text(encoding="utf-8")) for p in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("name", txengine.__all__)
def test_every_public_name_is_documented_and_typed(name: str) -> None:
    obj = getattr(txengine, name)
    assert f"`{name}`" in GUIDE, f"{name} is exported but not listed in docs/embedding.md"
    if inspect.isclass(obj):
        assert vars(obj).get("__doc__"), f"class {name} has no docstring"
        for meth, fn in _methods(obj):
            assert inspect.getdoc(fn), f"{name}.{meth} has no docstring"
            assert not _untyped(fn), f"{name}.{meth} lacks annotations: {_untyped(fn)}"
    elif inspect.isfunction(obj):
        assert obj.__doc__, f"function {name} has no docstring"
        assert not _untyped(obj), f"{name} lacks annotations: {_untyped(obj)}"
    else:
        assert _commented(name), f"{name} needs a '#:' comment where it is defined"


def test_all_is_what_the_package_exports() -> None:
    assert len(set(txengine.__all__)) == len(txengine.__all__)
    for name in txengine.__all__:
        assert hasattr(txengine, name), name


def test_only_private_modules_besides_testing_and_schema() -> None:
    names = {m.name for m in pkgutil.iter_modules(txengine.__path__)}
    public = {n for n in names if not n.startswith("_")}
    assert public <= PUBLIC_MODULES, (
        f"modules without a leading underscore: {public - PUBLIC_MODULES}"
    )


def test_version_matches_the_distribution() -> None:
    assert txengine.__version__ == importlib.metadata.version("txtool-engine")


def test_txtool_uses_only_the_public_api() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in sorted((ROOT / "cli").rglob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\btxengine\._|from\s+txengine\s+import\s+\(?\s*_", line)
    ]
    assert offenders == [], "cli/ imports private engine modules:\n" + "\n".join(offenders)
