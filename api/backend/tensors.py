"""Encoding of KServe v2 protobuf tensors (inputs) and decoding of outputs, with numpy.

Tensors travel in ``raw_input_contents`` / ``raw_output_contents``; BYTES elements are each
prefixed with their length as a little-endian uint32, as Triton expects.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2

_NUMPY_DTYPES: dict[str, npt.DTypeLike] = {
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT64": np.uint64,
    "FP32": np.float32,
    "BOOL": np.bool_,
}
_LENGTH = struct.Struct("<I")
_INTEGERS = {
    "INT32": struct.Struct("<i"),
    "INT64": struct.Struct("<q"),
    "UINT64": struct.Struct("<Q"),
}


def add_input(
    request: service_pb2.ModelInferRequest,
    name: str,
    datatype: str,
    values: Sequence[object],
    shape: Sequence[int] | None = None,
) -> None:
    """Append one input tensor; ``shape`` defaults to ``[1, len(values)]`` (batch of one)."""
    tensor = request.inputs.add()
    tensor.name = name
    tensor.datatype = datatype
    tensor.shape.extend(shape if shape is not None else (1, len(values)))
    request.raw_input_contents.append(encode(datatype, values))


def encode(datatype: str, values: Sequence[object]) -> bytes:
    if datatype == "BYTES":
        return b"".join(_encode_element(value) for value in values)
    return np.asarray(values, dtype=_NUMPY_DTYPES[datatype]).tobytes()


def _encode_element(value: object) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]
    return _LENGTH.pack(len(data)) + data


def decode_bytes(raw: bytes) -> list[bytes]:
    """Split a raw BYTES tensor into its elements."""
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def outputs_by_name(response: service_pb2.ModelInferResponse) -> dict[str, bytes]:
    """Raw contents keyed by output name (responses may carry only some outputs)."""
    return {
        output.name: raw
        for output, raw in zip(response.outputs, response.raw_output_contents, strict=False)
    }


def decode_array(
    response: service_pb2.ModelInferResponse, name: str
) -> npt.NDArray[np.generic] | None:
    """A numeric output as an array of its declared shape, or None when absent."""
    for output, raw in zip(response.outputs, response.raw_output_contents, strict=False):
        if output.name == name:
            array = np.frombuffer(raw, dtype=_NUMPY_DTYPES[output.datatype])
            return array.reshape(tuple(output.shape))
    return None


def first_int(datatype: str, raw: bytes) -> int | None:
    """The first element of an integer output (a count), without building an array."""
    layout = _INTEGERS.get(datatype)
    if layout is None:
        raise ValueError(f"not an integer tensor: {datatype}")
    if len(raw) < layout.size:
        return None
    value: int = layout.unpack_from(raw)[0]
    return value
