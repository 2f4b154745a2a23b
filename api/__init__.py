"""OpenAI-compatible HTTP API in front of a Triton Inference Server model repository."""

import os

# grpc-core reads GRPC_EXPERIMENTS once, when it starts, so this must run before anything
# imports grpc; the package's __init__ runs first. With grpc-core's older TCP client instead of
# its EventEngine client, the API spent 15-24% less CPU per streamed token against the same
# Triton (benchmarks/README.md). An operator's own GRPC_EXPERIMENTS is left as it is; tools and
# servers this process starts get theirs back (launcher.server, benchmarks.tools).
GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_for_all_other_endpoints"
os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
