"""Render the model repository and run Triton Inference Server (`python -m launcher`)."""
