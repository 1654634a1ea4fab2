"""Training in torch: the SSA iteration loop, probing and weak labels, checkpoints, explanation metrics, the files
of fanned-out probe shards, and `pipeline.train_model` (train, then write the model folder)."""
