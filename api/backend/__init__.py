"""The inference backend seam: routes talk to a Protocol, never to tensors or gRPC."""
