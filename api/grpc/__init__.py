"""The public gRPC API (``llm.v1.LLMService``, ``llm_service.proto``) beside REST and WebSocket.

It runs in the API process (``grpc.port``) over the same pipeline: the same schemas validate
its requests, the same authentication, limits, usage records and content filter apply, and
the same errors reach the client as gRPC status codes. ``*_pb2*.py`` are generated
(``python -m scripts.grpc_stubs``).
"""
