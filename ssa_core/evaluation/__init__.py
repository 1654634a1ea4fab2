"""Scores of a model on labelled data: the metrics (NumPy) and `ssa eval`'s report through the ONNX runtime.
Torch-free (import-linter contract in pyproject.toml)."""
