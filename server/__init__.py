"""The gRPC service: validation, translation, error mapping, start-up and shutdown."""
