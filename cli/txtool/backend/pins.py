"""Pins as the resolvers print them: ``name==version`` from an index, ``name @ URL`` for a
direct reference (a directory, a file, a URL, a VCS commit), and the arguments that install
them."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from ..names import canonical, parsed


def pin_name(pin: str) -> str:
    """The distribution a pin installs, canonicalized."""
    return canonical(pin.split("==", 1)[0].split(" @ ", 1)[0].strip())


def is_rebuilt(pin: str) -> bool:
    """A pin whose content the pin does not fix (a directory, a file, a URL): an upgrade
    builds it again. A VCS pin names its commit and an index pin its version."""
    if " @ " not in pin:
        return False
    return "+" not in urlsplit(pin.split(" @ ", 1)[1].strip()).scheme


def install_args(pins: Sequence[str], editable: Sequence[str]) -> list[str]:
    """The requirement arguments installing ``pins``; those of the distributions named in
    ``editable`` (direct references to a project directory) as ``-e URL``."""
    wanted = {canonical(n) for n in editable}
    args: list[str] = []
    for p in pins:
        req = parsed(p)
        if req.url and canonical(req.name) in wanted:
            args += ["-e", req.url]
        else:
            args.append(p)
    return args
