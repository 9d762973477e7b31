"""What a backend failure is: one line for the user, a kind the CLI can explain, the detail."""

from __future__ import annotations


class BackendError(Exception):
    """A backend failure. str(err) is one human line; `detail` holds the tool's full stderr."""

    KINDS = ("not-found", "unreachable", "invalid", "python", "failed")

    def __init__(self, message: str, *, kind: str = "failed", detail: str = "") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown BackendError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.detail = detail


# Ordered: the first matching kind wins. Unreachable goes before not-found because an unreachable
# index also ends in "no matching distribution".
KIND_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "python",
        (
            "no interpreter found",
            "could not locate python interpreter",
            "failed to inspect python interpreter",
            "no python interpreter found",
        ),
    ),
    (
        "invalid",
        (
            "couldn't parse requirement",
            "invalid requirement",
            "failed to parse",
            "expected package name",
        ),
    ),
    (
        "unreachable",
        (
            "failed to fetch",
            "could not connect",
            "dns error",
            "connection refused",
            "failed to read `--find-links` directory",
            "directory not found for find-links",
            "not a directory",
            "could not fetch url",
            "failed to establish a new connection",
            "max retries exceeded",
            "name or service not known",
            "temporary failure in name resolution",
            "is either a non-existing path or lacks a specific scheme",
            "is neither a file nor a directory",
            "not a trusted or secure host",
        ),
    ),
    (
        "not-found",
        (
            "not found in the package registry",
            "not found in the provided package locations",
            "no solution found",
            "there is no version of",
            "no matching distribution found",
            "could not find a version that satisfies",
        ),
    ),
)


def classify(stderr: str) -> str:
    low = stderr.lower()
    for kind, needles in KIND_PATTERNS:
        if any(n in low for n in needles):
            return kind
    return "failed"
