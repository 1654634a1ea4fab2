"""Inference: the typed /predict request, the micro-batcher, the model manager (load, warm up, hot swap), the
occlusion pool, and the predict module that runs a request through them into the typed response."""
