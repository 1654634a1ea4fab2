"""ssa_core: Self-Supervised Attention for BERT-family classifiers (data, model, probing, training, export, runtime)."""

__version__ = "0.1.0"
