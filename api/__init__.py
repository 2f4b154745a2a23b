"""OpenAI-compatible HTTP API in front of a Triton Inference Server model repository."""
