"""What a benchmark run is asked for, and where its results go."""

from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Options:
    quick: bool = False  # tiny samples: a smoke run in under two minutes
    full: bool = False  # the full sizes where a benchmark scales down by default
    out: Path = RESULTS_DIR

    def pick(self, quick, normal, full=None):
        """A size for this run: quick, normal, or full (when given and asked for)."""
        if self.quick:
            return quick
        if self.full and full is not None:
            return full
        return normal
