"""Prometheus metrics of one app instance (own registry, so that several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    """Request latency, batch sizes, queue depth, inference time and the active model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "ssa_request_latency_seconds", "HTTP request latency by route, method and status.",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("ssa_batch_size", "Inputs per inference batch.", buckets=BATCH_BUCKETS,
                                    registry=self.registry)
        self.batch_requests = Histogram("ssa_batch_requests", "Requests grouped into one inference batch.",
                                        buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("ssa_queue_depth", "Predict requests waiting for a batch.", registry=self.registry)
        self.inference_seconds = Histogram("ssa_inference_seconds", "Time of one batch through the model.",
                                           buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rejected = Counter("ssa_rejected_requests", "Predict requests refused (queue full) or timed out.",
                                ["reason"], registry=self.registry)
        self.model_info = Info("ssa_active_model", "The model being served.", registry=self.registry)
        self.model_loaded = Gauge("ssa_model_loaded", "1 when a model is loaded and warmed up.",
                                  registry=self.registry)
        self.deploys = Counter("ssa_model_deploys", "Model loads (deploys and picked-up changes) by outcome.",
                               ["outcome"], registry=self.registry)

    def set_model(self, model_id: str, version: str, provider: str) -> None:
        self.model_info.info({"model_id": model_id, "version": version, "provider": provider})
        self.model_loaded.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
