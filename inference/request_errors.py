"""Errors of a request's own making, as the Python-backend models report them.

A Triton model answers a bad request with an error response for that request alone; the text
starts with a code (model_repository/README.md) that the API maps to a 400. An error without
one reads as a fault of the backend (a 500 that counts against the model's circuit breaker),
so every input error a model raises goes out with a code: one client's malformed request never
takes the model down for the others.
"""

from __future__ import annotations

from typing import Final

INVALID_REQUEST: Final = "invalid_request:"
# Codes that name the input more precisely; kept as they are.
_CODES: Final = (
    INVALID_REQUEST,
    "context_length_exceeded:",
    "invalid_logit_bias:",
    "invalid_guided_decoding:",
    "invalid_tools:",
)
# What malformed tensors raise in parsing code (wrong shape, type, encoding, range).
INPUT_ERRORS: Final = (ValueError, TypeError, KeyError, IndexError, UnicodeError, OverflowError)


def input_error_message(error: BaseException) -> str:
    """The error text for a request whose input caused ``error``, with a code the API maps."""
    text = str(error) or type(error).__name__
    if any(code in text for code in _CODES):
        return text
    return f"{INVALID_REQUEST} {text}"
