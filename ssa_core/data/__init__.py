"""Datasets and text: loading and validating labelled files (JSONL, CSV, TSV, Parquet), single values, reviewed
rationales and the character spans of wordpieces. Torch-free (import-linter contract in pyproject.toml)."""
