"""What a campaign found: one :class:`Report` per campaign, its failures, a table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Failure:
    """One broken promise: which case, what was wrong, how to reproduce it, where to look."""

    case: str
    message: str
    repro: str
    workdir: Path | None = None

    def __str__(self) -> str:
        where = f"\n  kept: {self.workdir}" if self.workdir else ""
        return f"[{self.case}] {self.message}\n  repro: {self.repro}{where}"


@dataclass
class Report:
    """The outcome of one campaign over one scenario."""

    scenario: str
    campaign: str
    tried: int = 0
    passed: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: How many cases stopped in each state ("world new; journal: incomplete [...]" ...).
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return self.tried > 0 and not self.failures

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def __str__(self) -> str:
        head = (
            f"{self.scenario} / {self.campaign}: {self.tried} tried, {self.passed} passed,"
            f" {self.failed} failed in {self.seconds:.1f}s"
        )
        seen = [f"  {n:4d} x {what}" for what, n in sorted(self.outcomes.items())]
        return "\n".join([head, *self.notes, *seen, *(str(f) for f in self.failures[:5])])


def format_table(reports: Iterable[Report]) -> str:
    """A plain-text table: scenario | campaign | tried | passed | failed | first failure repro."""
    header = ("scenario", "campaign", "tried", "passed", "failed", "first failure repro")
    rows = [header]
    for r in reports:
        first = r.first_failure
        repro = f"[{first.case}] {first.repro}" if first else "-"
        rows.append((r.scenario, r.campaign, str(r.tried), str(r.passed), str(r.failed), repro))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append(" | ".join([*cells, row[-1]]).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in [*widths, len(header[-1])]))
    return "\n".join(lines) + "\n"
