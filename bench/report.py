"""What a benchmark prints: each figure beside the bare figure or floor it answers to, the ratio
of the two measured in the same run, and whether the ratio (or an absolute limit) is met.

Absolute times on a shared machine are noisy; a ratio to a floor measured minutes apart on the
same machine is what the targets are about.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    floor: float | None  # the bare figure measured in the same run; None when there is none
    unit: str
    op: str  # "<=" (value/floor at most target) or ">=" (at least)
    target: float | None  # the ratio's target
    limit: float | None = None  # an absolute target in the figure's unit, same op
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor == 0:
            return None
        return self.value / self.floor

    def met(self) -> bool | None:
        """True/False against whichever targets the figure has; None when it has none."""
        checks: list[bool] = []
        ratio = self.ratio
        if self.target is not None and ratio is not None:
            checks.append(ratio <= self.target if self.op == "<=" else ratio >= self.target)
        if self.limit is not None:
            checks.append(self.value <= self.limit if self.op == "<=" else self.value >= self.limit)
        return all(checks) if checks else None


def machine() -> str:
    cores = os.cpu_count() or 0
    try:
        with open("/proc/meminfo") as handle:
            kb = int(handle.readline().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "? GiB"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cores} cores, {memory}, {cpu}, Python {platform.python_version()}"


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quiet: bool = False

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        if not self.quiet:
            print(self.line(figure), flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        if not self.quiet:
            print(f"    {text}", flush=True)

    def section(self, title: str) -> None:
        if not self.quiet:
            print(f"\n== {title}", flush=True)

    @staticmethod
    def line(f: Figure) -> str:
        verdict = {True: "MET   ", False: "MISSED", None: "      "}[f.met()]
        target = ""
        if f.target is not None:
            target = f"ratio {f.op} {f.target:g}"
        if f.limit is not None:
            target += ("; " if target else "") + f"{f.op} {f.limit:g} {f.unit}"
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        note = f"  ({f.note})" if f.note else ""
        return (
            f"{verdict} {f.name:44} {_num(f.value, f.unit):>16}  floor {_num(f.floor, f.unit):>14}"
            f"  {ratio:>7}  {target}{note}"
        )

    def table(self) -> str:
        """The figures as a Markdown table (what the README carries)."""
        rows = ["| figure | desk | bare / floor | ratio | target | met |",
                "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for f in self.figures:
            target = f"{f.op} {f.target:g}x" if f.target is not None else ""
            if f.limit is not None:
                target += ("; " if target else "") + f"{f.op} {f.limit:g} {f.unit}"
            met = {True: "yes", False: "no", None: "-"}[f.met()]
            ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
            rows.append(
                f"| {f.name} | {_num(f.value, f.unit)} | {_num(f.floor, f.unit)} | {ratio} | "
                f"{target} | {met} |"
            )
        return "\n".join(rows)

    def write(self, path: Path) -> None:
        path.write_text(
            json.dumps(
                {"machine": machine(), "figures": [asdict(f) | {"ratio": f.ratio,
                 "met": f.met()} for f in self.figures], "notes": self.notes},
                indent=2,
            )
        )  # fmt: skip
