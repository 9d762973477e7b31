"""What the user sees while an operation runs: a live display on a terminal, plain lines
otherwise. ``rich`` is imported only for the live display, so piped runs start fast."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Any, TextIO

from txengine import OperationView

if TYPE_CHECKING:
    from .installer import Outcome


def _label(view: OperationView, index: int) -> str:
    # The step's own describe(): the words its failure is reported in too.
    from .installer import describe_step

    return f"step {index + 1}/{len(view.plan)}: {describe_step(view, index)}"


class Reporter:
    """Receives the engine's step events (it is the engine's observer)."""

    def __init__(self, live: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr  # looked up now: main() may have guarded it
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if live:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn

            console = Console(file=stream)
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
            )

    def __enter__(self) -> Reporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, event: str, view: OperationView, index: int) -> None:
        if any(r and r.get("unchanged") for r in view.results):
            return  # nothing to do: the later steps only record that they were skipped
        who = f"{view.kind} {view.subject}"
        if self._progress is not None:
            self._live(event, view, index, who)
            return
        if event == "start":
            self.line(f"{who}: {_label(view, index)}")
        elif event == "failed":
            # The cause is in the one error line the command ends with: said once.
            self.line(f"{who}: {_label(view, index)} failed")
        elif event == "revert":
            self.line(f"{who}: undoing {_label(view, index)}")
        elif event == "rolled-back":
            self.line(f"{who}: every change undone")

    def _live(self, event: str, view: OperationView, index: int, who: str) -> None:
        task = self._tasks.get(view.id)
        if task is None:
            task = self._tasks[view.id] = self._progress.add_task(who, total=None)
        if event in ("start", "revert"):
            verb = "undoing " if event == "revert" else ""
            self._progress.update(task, description=f"{who}: {verb}{_label(view, index)}")
        elif event == "failed":
            self.line(f"{who}: {_label(view, index)} failed")
        elif event in ("committed", "rolled-back"):
            self._progress.remove_task(task)
            del self._tasks[view.id]


def outcome_line(o: Outcome) -> str:
    """The one line that tells the user what a command did to a tool."""
    if o.action == "installed":
        return f"installed {o.tool} {o.version}: {', '.join(sorted(o.shims))}"
    if o.action in ("upgraded", "reinstalled", "injected", "uninjected"):
        return _rebuilt_line(o) + _pin_note(o)
    if o.action == "up-to-date":
        return f"{o.tool} is up to date ({o.version})" + _pin_note(o)
    if o.action == "already-injected":
        return f"{o.tool} {o.version} already has these plugins"
    if o.action == "already-installed":
        return f"{o.tool} {o.version} is already installed (upgrade it, or --force to reinstall)"
    if o.action == "uninstalled":
        kept = "".join(f"\nkept {path}: it is no longer txtool's" for path in o.kept)
        return f"uninstalled {o.tool} {o.old_version}{kept}"
    if o.action == "rolled-back":
        python = f", Python {o.old_python} -> {o.python}" if o.old_python is not None else ""
        return (
            f"rolled back {o.tool} {o.old_version} -> {o.version}"
            f" (generation {o.generation}{python})"
        )
    if o.action == "pruned":
        n = len(o.pruned)
        return f"{o.tool}: removed {n} old generation{'s' if n != 1 else ''}"
    if o.action == "nothing-to-prune":
        return f"{o.tool}: no generation to remove"
    if o.action == "resumed":
        state = f" ({o.version})" if o.version else " (uninstalled)"
        return f"{o.tool}: the interrupted operation is finished{state}"
    return f"{o.action} {o.kind} {o.tool} (op {o.op})"  # finished / reverted, by resume


def _rebuilt_line(o: Outcome) -> str:
    """An environment rebuilt: the version change, else the Python change, else the kind."""
    python = f"Python {o.old_python} -> {o.python}" if o.old_python is not None else ""
    if o.version != o.old_version:
        return f"{o.action} {o.tool} {o.old_version} -> {o.version}" + (
            f" ({python})" if python else ""
        )
    return f"{o.action} {o.tool} {o.version}" + (f": {python}" if python else "")


def _pin_note(o: Outcome) -> str:
    """An upgrade that stayed within the recorded pin says so, and how to lift it."""
    if o.pin is None:
        return ""
    return (
        f" within its pin {o.pin} (lift it with `txtool upgrade {o.tool}@latest`,"
        f" or give a new spec, e.g. `txtool upgrade '{o.tool}>{o.version}'`)"
    )


def late_signal_note(signum: int) -> str:
    """A signal that came once the work was done: it changed nothing."""
    return (
        f"{signal.Signals(signum).name} arrived as the command was ending: what it did"
        " completed before the interrupt took effect"
    )
