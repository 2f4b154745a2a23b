"""Prometheus view of the breakers and admission gates, read live at scrape time.

A custom collector instead of Gauge objects updated on every change: the state lives in one
place (the breakers and gates) and a scrape cannot disagree with it. Register it in the
application's own ``CollectorRegistry`` (never the global one, so apps in tests do not clash).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.backend.breaker import BreakerState
from api.resilience import Resilience


class ResilienceCollector(Collector):
    """Breaker state (one-hot per state), refusals, in-flight and queued requests per model."""

    def __init__(self, resilience: Resilience) -> None:
        self._resilience = resilience

    def collect(self) -> Iterator[Metric]:
        yield from self._breakers()
        yield from self._admission()
        yield from self._replicas()

    def _breakers(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "api_circuit_breaker_state",
            "1 for the current state of each Triton model's circuit breaker.",
            labels=["model", "state"],
        )
        opened = CounterMetricFamily(
            "api_circuit_breaker_opened", "Times the breaker opened.", labels=["model"]
        )
        rejected = CounterMetricFamily(
            "api_circuit_breaker_rejected",
            "Requests refused fast (503 circuit_open) while the breaker was open.",
            labels=["model"],
        )
        unresponsive = GaugeMetricFamily(
            "api_model_unresponsive",
            "1 while the model fails the active probe (its breaker held open).",
            labels=["model"],
        )
        for model, breaker in self._resilience.breakers.items():
            current = breaker.state
            for candidate in BreakerState:
                state.add_metric([model, candidate.value], float(candidate is current))
            opened.add_metric([model], breaker.opened_total)
            rejected.add_metric([model], breaker.rejected_total)
            unresponsive.add_metric([model], float(breaker.unresponsive is not None))
        yield from (state, opened, rejected, unresponsive)

    def _admission(self) -> Iterator[Metric]:
        admission = self._resilience.admission
        in_flight = GaugeMetricFamily(
            "api_requests_in_flight", "Requests running against a Triton model.", labels=["model"]
        )
        queued = GaugeMetricFamily(
            "api_requests_queued", "Requests waiting for a slot.", labels=["model"]
        )
        refused = CounterMetricFamily(
            "api_requests_overloaded",
            "Requests refused by admission control (503 model_overloaded).",
            labels=["model"],
        )
        for gate in admission.gates():
            in_flight.add_metric([gate.name], gate.in_flight)
            queued.add_metric([gate.name], gate.waiting)
            refused.add_metric([gate.name], gate.rejected_total)
        draining = GaugeMetricFamily("api_draining", "1 while the API drains for shutdown.")
        draining.add_metric([], float(admission.draining))
        yield from (in_flight, queued, refused, draining)

    def _replicas(self) -> Iterator[Metric]:
        """Per replica of each balanced endpoint: what least request balances, and whether
        it may take requests. Replicas come and go with discovery; labels follow them."""
        labels = ["endpoint", "replica"]
        in_flight = GaugeMetricFamily(
            "api_replica_requests_in_flight",
            "Requests running on one Triton replica.",
            labels=labels,
        )
        started = CounterMetricFamily(
            "api_replica_requests_started", "Requests sent to one Triton replica.", labels=labels
        )
        in_rotation = GaugeMetricFamily(
            "api_replica_in_rotation", "1 while the replica takes new requests.", labels=labels
        )
        for replica_set in self._resilience.replica_sets:
            for replica in replica_set.replicas:
                key = [replica_set.name, replica.address]
                in_flight.add_metric(key, replica.in_flight)
                started.add_metric(key, replica.started_total)
                in_rotation.add_metric(key, float(replica.in_rotation))
        yield from (in_flight, started, in_rotation)


def register(registry: CollectorRegistry, resilience: Resilience) -> None:
    """Add the resilience metrics to ``registry`` (the application's own)."""
    registry.register(ResilienceCollector(resilience))
