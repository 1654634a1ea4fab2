"""The HTTP edge: ASGI middleware (body cap, JSON checks, security headers, HEAD as GET, latency), the /predict
fast path ahead of them, direct routes, the per-client rate limit."""
