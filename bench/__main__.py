"""make bench: runs the CPU benchmarks and prints their ratios against the targets.

    python -m bench                     # all of them (about 5 minutes on 2 cores)
    python -m bench dispatch intake     # a subset
    python -m bench --quick             # tiny samples: a smoke run (under 2 minutes)
    python -m bench scale --full        # the full sizes (100,000 queued jobs)

Every figure is a ratio against a baseline measured in the same run on the same machine.
Results: bench/results/<name>.json and .png, and summary.{json,md,png} for the run
(bench/results/quick/ for --quick). The GPU benchmarks are separate: python -m bench.gpu.
Missed targets are reported, not failed: the exit status is 1 only when a benchmark
could not run."""

import argparse
import importlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from bench.charts import ratio_chart
from bench.options import Options, RESULTS_DIR
from bench.results import Row, Todo, format_table, machine_facts, markdown_table
from bench.stack import shared_stack

BENCHMARKS = ("dispatch", "intake", "concurrency", "worker", "scale", "cold", "llm", "audio")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true",
                        help="tiny samples, for a smoke run; results in bench/results/quick/")
    parser.add_argument("--full", action="store_true",
                        help="full sizes where the default scales down (scale: 100,000 "
                             "queued jobs instead of 5,000; cold: 3 rounds)")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {', '.join(BENCHMARKS)}")
    return args


def merged_rows(out: Path, ran: list[str], rows: list[tuple[str, object]]) -> list:
    """This run's (benchmark, row) pairs, in BENCHMARKS order, with the rows of the
    benchmarks it did not run taken from their latest results file (each marked with
    that file's date), so that a subset run keeps summary.{json,md,png} whole."""
    by_name: dict[str, list] = {}
    for name, row in rows:
        by_name.setdefault(name, []).append(row)
    merged = []
    for name in BENCHMARKS:
        if name in ran:
            merged += by_name.get(name, [])
            continue
        path = out / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        date = data.get("machine", {}).get("date", "?")[:16]
        for raw in data.get("rows", []):
            if "todo" in raw:
                merged.append(Todo(raw["name"], raw["todo"]))
                continue
            target = tuple(raw["target"]) if raw.get("target") else None
            row = Row(raw["name"], raw["measured"], raw["baseline"], raw["unit"], target,
                      raw.get("note", ""))
            row.note = f"from {date}"
            merged.append(row)
    return merged


def _terminate(signum, frame):
    # Turn SIGTERM into an exception, so that every stack is closed on the way out.
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    args = parse_args(argv)
    names = args.names or list(BENCHMARKS)
    out = args.out or (RESULTS_DIR / "quick" if args.quick else RESULTS_DIR)
    opts = Options(quick=args.quick, full=args.full, out=out)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    signal.signal(signal.SIGTERM, _terminate)

    rows, notes, failed, timings = [], [], [], {}
    started = time.perf_counter()
    with shared_stack():  # servers once; each benchmark ends its own processes
        timings["stack"] = round(time.perf_counter() - started, 1)
        for name in names:
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                result = importlib.import_module(f"bench.{name}").run(opts)
                rows += [(name, row) for row in result["rows"]]
                notes += [f"{name}: {note}" for note in result.get("notes", [])]
            except Exception:
                traceback.print_exc()
                failed.append(name)
                rows.append((name, Todo(f"{name}", "FAILED: see the traceback above")))
            timings[name] = round(time.perf_counter() - t0, 1)
            print(f"bench: {name} took {timings[name]:.0f}s", file=sys.stderr, flush=True)
    total = time.perf_counter() - started

    facts = machine_facts()
    heading = (f"{facts['date']} · {facts['cpu_count']} CPUs ({facts.get('cpu_model')}) · "
               f"Python {facts['python']} · torch {facts['torch']}"
               f"{' · QUICK (tiny samples)' if opts.quick else ''}"
               f"{' · FULL sizes' if opts.full else ''}")
    print()
    print(heading)
    print(format_table([row for _, row in rows]))
    print(f"\n{len(names)} benchmarks in {total:.0f}s; results in {out}/")
    for note in notes:
        if "scaled down" in note or "TODO" in note:
            print(f"note: {note}")

    out.mkdir(parents=True, exist_ok=True)
    rows = merged_rows(out, names, rows)  # the summary covers every benchmark
    measured = [r for r in rows if isinstance(r, Row) and r.target]
    summary = {"machine": facts, "options": {"quick": opts.quick, "full": opts.full},
               "benchmarks": names, "seconds": timings, "total_seconds": round(total, 1),
               "rows": [r.to_json() if isinstance(r, Row) else {"name": r.name, "todo": r.why}
                        for r in rows],
               "targets_met": sum(1 for r in measured if r.passed),
               "targets": len(measured), "notes": notes, "failed": failed}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "summary.md").write_text(f"{heading}\n\n{markdown_table(rows)}\n")
    try:
        ratio_chart(out / "summary.png", "genai-network benchmarks: ratio to the baseline "
                    "measured in the same run", rows, subtitle=heading)
    except Exception as exc:
        print(f"bench: could not draw summary.png: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
