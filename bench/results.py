"""Result rows (a figure, its baseline from the same run, their ratio and target), the
tables they print as, and the results files (bench/results/<name>.json).

Every figure is a ratio against a baseline measured in the same run on the same machine:
the machine is shared and noisy, so absolute numbers say little and ratios say a lot."""

import datetime
import json
import math
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.options import Options


@dataclass
class Row:
    """One line of the table: a measured figure, its baseline from the same run, their
    ratio, and the target the ratio must meet (None: shown for information)."""

    name: str
    measured: float
    baseline: float
    unit: str
    target: tuple[str, float] | None = None  # (">=" or "<=", value)
    note: str = ""
    ratio: float = field(init=False)
    passed: bool | None = field(init=False)

    def __post_init__(self):
        self.ratio = self.measured / self.baseline if self.baseline else math.nan
        if self.target is None or math.isnan(self.ratio):
            self.passed = None
        elif self.target[0] == "<=":
            self.passed = self.ratio <= self.target[1]
        else:
            self.passed = self.ratio >= self.target[1]

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'≤' if self.target[0] == '<=' else '≥'} {self.target[1]:g}"

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "MISS", None: "info"}[self.passed]

    def to_json(self) -> dict:
        data = asdict(self)
        data["target"] = list(self.target) if self.target else None
        return data


@dataclass
class Todo:
    """A figure that cannot be measured yet, said so in the table and the results."""

    name: str
    why: str


def fmt(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


TABLE_HEADER = ("benchmark", "measured", "baseline", "ratio", "target", "")


def table_lines(rows) -> list[tuple[str, ...]]:
    lines = []
    for row in rows:
        if isinstance(row, Todo):
            lines.append((row.name, "TODO", "-", "-", "-", row.why))
            continue
        lines.append((row.name, fmt(row.measured, row.unit), fmt(row.baseline, row.unit),
                      f"{row.ratio:.2f}" if not math.isnan(row.ratio) else "n/a",
                      row.target_text, row.verdict + (f" ({row.note})" if row.note else "")))
    return lines


def format_table(rows) -> str:
    lines = [TABLE_HEADER, *table_lines(rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_HEADER))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                             for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(rows) -> str:
    out = ["| " + " | ".join(TABLE_HEADER[:5]) + " | |",
           "| --- | ---: | ---: | ---: | ---: | --- |"]
    for line in table_lines(rows):
        out.append("| " + " | ".join(line) + " |")
    return "\n".join(out)


def machine_facts() -> dict:
    facts = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for package in ("torch", "diffusers", "transformers", "celery", "kombu", "flask",
                    "gunicorn", "redis", "sqlalchemy", "psycopg"):
        try:
            from importlib.metadata import version

            facts[package] = version(package)
        except Exception:
            facts[package] = None
    try:
        with open("/proc/cpuinfo") as f:
            facts["cpu_model"] = next((line.split(":", 1)[1].strip() for line in f
                                       if line.startswith("model name")), None)
    except OSError:
        facts["cpu_model"] = None
    try:
        import psutil

        facts["memory_bytes"] = psutil.virtual_memory().total
    except Exception:
        pass
    return facts


def write_results(name: str, rows, details: dict, opts: Options, notes=(),
                  seconds: float | None = None, chart=None) -> Path:
    """bench/results/<name>.json, and <name>.png drawn by chart(path) when given."""
    opts.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "machine": machine_facts(),
        "options": {"quick": opts.quick, "full": opts.full},
        "seconds": round(seconds, 2) if seconds is not None else None,
        "rows": [r.to_json() if isinstance(r, Row) else {"name": r.name, "todo": r.why}
                 for r in rows],
        "notes": list(notes),
        "details": details,
    }
    path = opts.out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    tmp.replace(path)
    if chart is not None:
        try:
            chart(opts.out / f"{name}.png")
        except Exception as exc:  # a chart never loses the numbers
            print(f"bench: could not draw {name}.png: {exc}", file=sys.stderr)
    return path


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"not JSON: {type(value).__name__}")
