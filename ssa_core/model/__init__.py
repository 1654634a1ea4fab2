"""The SSA network in torch: encoder + token head + SSA layer (`ssa_model`), its Hugging Face folder side
(`hf_folder`, the remote code `hf_modeling` every folder carries as modeling_ssa.py) and the tokenizer wrapper."""
