"""What a trained model becomes on disk: the ONNX export with its parity check, the int8/fp16 variants, the model
card, and the model folder (weights, tokenizer, ONNX, ssa.json, metrics.json, README.md)."""
