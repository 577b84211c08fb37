"""One Prometheus exposition for every process of a server.

Each process keeps its own registry (nothing is shared between processes);
workers push their exposition text to the storage process, which serves the
union: its own samples as a single process would show them, each worker's
with a ``process="w<K>"`` label.
Summing across processes is left to the query (``sum without (process)``):
it is right for counters and histograms and wrong for gauges such as
``pixel_ready``, so the server does not guess (docs/architecture.md §8).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

PROCESS_LABEL = "process"


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> list[Metric]:  # type: ignore[override]
        return self._families


def merge_expositions(parts: Mapping[str, bytes]) -> bytes:
    """The union of several processes' expositions; samples of a part whose
    name is empty keep their labels, the others get a process label."""
    merged: dict[str, Metric] = {}
    for process, text in parts.items():
        for family in text_string_to_metric_families(text.decode()):
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            for s in family.samples:
                labels = {**s.labels, PROCESS_LABEL: process} if process else s.labels
                target.add_sample(s.name, labels, s.value, s.timestamp)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(merged.values()))
    return generate_latest(registry)
