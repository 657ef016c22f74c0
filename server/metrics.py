"""Prometheus metrics of one app instance."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class HttpMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    logins: Counter


def create() -> HttpMetrics:
    registry = CollectorRegistry()
    return HttpMetrics(
        registry=registry,
        requests=Counter(
            "yizhan_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "yizhan_http_request_seconds", "HTTP request latency", ["route"], registry=registry
        ),
        logins=Counter("yizhan_logins", "Login attempts", ["method", "outcome"], registry=registry),
    )
