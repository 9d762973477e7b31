"""bundles: install versioned bundles of files into a prefix, switching a ``current`` link.

An example installer built on txengine's public API alone. A prefix holds ``versions/V/``
(one directory per installed version), ``current`` (a symlink to ``versions/V``),
``manifest.json`` (what ``current`` is) and ``.journal/``. Installing a version is one
operation: stage, verify, switch, write the manifest; all of it happens, or none.
"""

from __future__ import annotations

from .installer import STEPS, current, install, plan, resume
from .steps import Stage, SwitchCurrent, Verify, tree_digest

__all__ = [
    "STEPS",
    "Stage",
    "SwitchCurrent",
    "Verify",
    "current",
    "install",
    "plan",
    "resume",
    "tree_digest",
]
