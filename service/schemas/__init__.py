"""Request and response bodies of the model, info, tokenize, health and job endpoints (the /predict bodies live
with inference: service.inference.request and service.inference.response)."""
