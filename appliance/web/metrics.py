"""Prometheus metrics for the box: requests, latencies, batches, queue, sync, model.

One registry per app (per gunicorn worker; the box runs one worker by default).
Figures that cost a read of the store are computed at most every
``REFRESH_S`` seconds, so a scraper cannot load a busy box.
"""
from __future__ import annotations

import time

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

REFRESH_S = 15.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class _StoreCollector:
    """Unsynced records, their age, the worker's queue and the model, cached briefly."""

    def __init__(self, service):
        self.service = service
        self._cached: tuple[float, list] | None = None

    def collect(self):
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > REFRESH_S:
            self._cached = (now, self._measure())
        yield from self._cached[1]

    def _measure(self) -> list:
        from ..queue import make_huey

        config = self.service.config
        families = []
        count, oldest = self.service.outbox.unsynced()
        families.append(GaugeMetricFamily("chalkbox_unsynced_records",
                                          "Records the centre has not acknowledged", count))
        age = 0.0
        if oldest is not None:
            from ..ids import id_timestamp_ms
            age = max(0.0, time.time() - id_timestamp_ms(oldest.id) / 1000)
        families.append(GaugeMetricFamily("chalkbox_oldest_unsynced_seconds",
                                          "Age of the oldest unacknowledged record", age))
        try:
            depth = make_huey(config.data_dir).pending_count()
        except Exception:  # the queue file may not exist before the worker first ran
            depth = 0
        families.append(GaugeMetricFamily("chalkbox_worker_queue_depth",
                                          "Tasks waiting for the worker", depth))
        info = InfoMetricFamily("chalkbox_model", "The grading model in use")
        model = self.service.loaded_model()
        if model is not None:
            info.add_metric([], {"model_id": model.manifest.model_id,
                                 "version": model.manifest.version,
                                 "provider": model.providers[0]})
        families.append(info)
        return families


class BoxMetrics:
    def __init__(self, service):
        self.registry = CollectorRegistry()
        self.requests = Counter("chalkbox_http_requests", "HTTP requests",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("chalkbox_http_request_seconds", "HTTP request latency",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("chalkbox_inference_batch_size", "Pairs per model run",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.inference = Histogram("chalkbox_inference_seconds", "Time per model run",
                                   buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_StoreCollector(service))

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def install(self, app: Flask) -> None:
        @app.before_request
        def _start() -> None:
            g.chalkbox_started = time.perf_counter()

        @app.after_request
        def _count(response):
            # The route's pattern, not the path: bounded label values whatever is requested.
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            self.requests.labels(endpoint, request.method, str(response.status_code)).inc()
            started = g.get("chalkbox_started")
            if started is not None:
                self.latency.labels(endpoint).observe(time.perf_counter() - started)
            return response
