"""Every metric Ferry exports, read from the registries its two components build (the
receiver's app and the controller's `ControllerMetrics`), never from a list kept by hand.

A labelled metric with no children yet has no samples, so `registry.collect()` alone cannot
tell its labels: those come from the metric objects the component holds (prometheus_client
keeps them as `_labelnames`). A collector of Ferry's own (not a prometheus_client metric)
has its samples at every scrape, so its labels are read from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from ci.controller.metrics import ControllerMetrics
from ci.settings import Settings
from webhooks.app import create_app

# The series each type puts in the exposition, by suffix; "le" is the histogram's own label.
_SERIES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


@dataclass(frozen=True, slots=True)
class Exported:
    component: str  # "webhooks" or "controller"
    name: str  # as queried: a counter's with `_total`
    kind: str  # counter, gauge, histogram
    help: str
    labels: frozenset[str]

    @property
    def family(self) -> str:
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    def series(self) -> dict[str, frozenset[str]]:
        """Each series name in the exposition, with the labels it carries."""
        return {self.family + suffix: self.labels | ({"le"} if suffix == "_bucket" else set())
                for suffix in _SERIES[self.kind]}


def _from(component: str, registry: CollectorRegistry, holder: object) -> Iterator[Exported]:
    wrappers = {metric._name: frozenset(metric._labelnames)
                for metric in vars(holder).values() if isinstance(metric, MetricWrapperBase)}
    for family in registry.collect():
        if family.name in wrappers:
            labels = wrappers[family.name]
        else:
            assert family.samples, f"{family.name}: neither a metric object nor samples"
            labels = frozenset(key for sample in family.samples for key in sample.labels)
        name = family.name + "_total" if family.type == "counter" else family.name
        yield Exported(component, name, family.type, family.documentation, labels)


def exported() -> dict[str, Exported]:
    """Ferry's metrics by the name a query uses."""
    receiver = create_app(Settings()).state.metrics
    controller = ControllerMetrics()
    found = [*_from("webhooks", receiver.registry, receiver),
             *_from("controller", controller.registry, controller)]
    by_name = {metric.name: metric for metric in found}
    assert len(by_name) == len(found), "two metrics of one name"
    return by_name


def series() -> dict[str, frozenset[str]]:
    """Every series name a query may select, with the labels it has."""
    return {name: labels for metric in exported().values()
            for name, labels in metric.series().items()}
