"""ASGI middleware that observes every HTTP request's latency into the app's metrics (service.metrics), labelled by
the matched route's template."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import ServiceMetrics


def route_name(scope: Scope) -> str:
    """The matched route's template ('/models/{model_id}'), or 'unmatched' (keeps label cardinality bounded).

    The router records the matched route in the (shared) scope."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


class LatencyMiddleware:
    """Observes every HTTP request's latency into `metrics.request_latency`."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            labels = (route_name(scope), scope.get("method", ""), str(status))
            self.metrics.request_latency.labels(*labels).observe(time.perf_counter() - start)
