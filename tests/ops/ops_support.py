"""Helpers of the operations tests: reading Prometheus pages and JSON log lines."""

import json

from prometheus_client.parser import text_string_to_metric_families


def scrape(http, url: str) -> dict[tuple[str, frozenset], float]:
    """A Prometheus text page as {(sample name, labels): value}."""
    response = http.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    """The sample with exactly these labels (None if absent)."""
    return samples.get((name, frozenset(labels.items())))


def total(samples: dict, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def json_lines(text: str) -> list[dict]:
    """The JSON log lines of a process's output (other lines skipped)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
    return found
