"""The ensemble's ``tensorrt_llm`` step; the adapter lives in ``inference.triton_llm_model``."""

from inference.triton_llm_model import TritonPythonModel

__all__ = ["TritonPythonModel"]
