"""Client tests reuse the server tests' real server with a fake backend."""

from tests.server.conftest import fake_backend, running, target  # noqa: F401
