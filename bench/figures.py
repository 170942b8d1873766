"""The headline figures of ``make bench``, side by side with their targets, in one table.

Each bench module records its own figures here as it finishes (``record``), in
``.ordo/bench-figures.json``; ``python -m bench.figures`` prints them all, last in ``make bench``.
A figure carries the time it was measured, so one left from an older run shows its age.

    python -m bench.figures
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import tables

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / ".ordo" / "bench-figures.json"


@dataclass(frozen=True)
class Figure:
    label: str
    measured: float
    unit: str  # "ms", "MB", "s" or "x"
    target: float | None  # None: shown for information
    stretch: float | None = None
    detail: str = ""
    measured_at: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        if self.stretch is not None and self.measured <= self.stretch:
            return "PASS*"  # within the stretch target too
        return "PASS" if self.measured <= self.target else "FAIL"


# The order of the table, and the bench module that records each figure.
ORDER = {
    "memory_pss": "bench.localcloud",
    "lane_overhead": "bench.localcloud",
    "pickup": "bench.localcloud",
    "mapping_pickup": "bench.localcloud",
    "gateway": "bench.localcloud",
    "cold_start": "bench.coldstart",
    "warm_start": "bench.startup",
    "burst": "bench.startup",
    "catalog_after_write": "bench.catalog",
    "catalog_read": "bench.catalog",
}


def _load() -> dict[str, Figure]:
    try:
        stored = json.loads(FIGURES.read_text())
    except (OSError, ValueError):
        return {}
    return {key: Figure(**value) for key, value in stored.items() if key in ORDER}


def record(key: str, figure: Figure) -> None:
    """Keep ``figure`` under ``key`` (one of :data:`ORDER`), stamped with the time."""
    if key not in ORDER:
        raise ValueError(f"unknown bench figure {key!r}")
    figures = _load()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    figures[key] = Figure(**(asdict(figure) | {"measured_at": stamp}))
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps({k: asdict(v) for k, v in figures.items()}, indent=2))


def _amount(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if unit == "x" else f"{value:.1f} {unit}"


def table(figures: dict[str, Figure]) -> str:
    rows = [("figure", "measured", "target", "stretch", "result", "measured at, detail")]
    for key, module in ORDER.items():
        figure = figures.get(key)
        if figure is None:
            rows.append((key, "-", "-", "-", "missing", f"run python -m {module}"))
            continue
        rows.append(
            (
                figure.label,
                _amount(figure.measured, figure.unit),
                "-" if figure.target is None else f"<= {_amount(figure.target, figure.unit)}",
                "-" if figure.stretch is None else f"<= {_amount(figure.stretch, figure.unit)}",
                figure.verdict,
                f"{figure.measured_at}  {figure.detail}".rstrip(),
            )
        )
    return tables.aligned(rows, free_last=True)


def main() -> int:
    figures = _load()
    print("\nmake bench: the headline figures against their targets (PASS*: stretch met too)")
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
