"""Generate the gRPC API's Python stubs from api/grpc/llm_service.proto (grpcio-tools).

``python scripts/grpc_stubs.py`` rewrites api/grpc/llm_service_pb2{.py,.pyi,_grpc.py};
tests/api/test_grpc_stubs.py fails while the committed stubs differ from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO = "api/grpc/llm_service.proto"
STUBS = ("llm_service_pb2.py", "llm_service_pb2.pyi", "llm_service_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Write the stubs under ``out_dir`` (as ``api/grpc/...``); returns their paths."""
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    return [out_dir / "api" / "grpc" / name for name in STUBS]


if __name__ == "__main__":
    for path in generate(ROOT):
        print(path.relative_to(ROOT), file=sys.stderr)
