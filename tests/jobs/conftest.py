"""Fixtures of the job API tests."""

from tests.worker.fixtures import base_models, redis_server, sentiment_rows, stack

__all__ = ["base_models", "redis_server", "sentiment_rows", "stack"]
