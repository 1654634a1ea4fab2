"""Token rationales for whole corpora: the labeler (ONNX runtime), its typed records, their files (JSONL,
Parquet) and review tasks (Label Studio, Argilla). Torch-free (import-linter contract in pyproject.toml)."""
