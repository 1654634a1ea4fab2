"""Serving a model folder without torch: the ONNX Runtime predictor, the folder's `ssa.json` record and file names,
and the artifact store of published models. Torch-free (import-linter contract in pyproject.toml)."""
