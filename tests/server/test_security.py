"""TLS (and mutual TLS) with real certificates, bearer tokens checked on every call but health."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from recs.server.catalog import Catalog
from recs.server.handlers import SERVICE, add_service
from recs.server.request_log import RequestLog
from recs.server.security import (
    SecurityConfigError,
    TokenFile,
    TokenInterceptor,
    parse_tokens,
    server_credentials,
)
from recs.server.servicer import RecommendationServicer
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.certs import Pki, make_pki
from tests.server.fakes import FakeBackend

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tokens_file(tmp_path: Path, *tokens: str) -> Path:
    path = tmp_path / "tokens"
    path.write_text("# who may call\n" + "\n".join(tokens) + "\n")
    return path


async def serve(
    credentials: grpc.ServerCredentials, tokens: TokenFile | None
) -> tuple[aio.Server, int, ThreadPoolExecutor]:
    interceptors = [TokenInterceptor(tokens)] if tokens else []
    server = aio.server(interceptors=interceptors)
    executor = ThreadPoolExecutor(max_workers=2)
    servicer = RecommendationServicer(Catalog(), executor)
    servicer.install_backend(FakeBackend())
    add_service(server, servicer, RequestLog())
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection((SERVICE.full_name, reflection.SERVICE_NAME), server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port, executor


@pytest.fixture
async def secured(pki: Pki, tmp_path: Path) -> AsyncIterator[str]:
    tokens = TokenFile(tokens_file(tmp_path, "another-token", TOKEN))
    server, port, executor = await serve(
        server_credentials(pki.server_cert, pki.server_key), tokens
    )
    yield f"127.0.0.1:{port}"
    await server.stop(0)
    executor.shutdown()


def channel(pki: Pki, target: str, client_cert: bool = False) -> aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes() if client_cert else None,
        certificate_chain=pki.client_cert.read_bytes() if client_cert else None,
    )
    return aio.secure_channel(target, credentials)


async def test_a_valid_token_over_tls_gets_an_answer(pki: Pki, secured: str) -> None:
    async with channel(pki, secured) as open_channel:
        stub = pb_grpc.RecommendationServiceStub(open_channel)
        answer = await stub.GetPopularItems(
            pb.GetPopularItemsRequest(num_results=2),
            metadata=(("authorization", f"Bearer {TOKEN}"),),
            timeout=5,
        )
    assert [item.item_id for item in answer.items] == ["v1", "v2"]


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)],
    ids=["none", "wrong token", "not a bearer"],
)
async def test_calls_without_a_valid_token_are_unauthenticated(
    pki: Pki, secured: str, metadata: tuple
) -> None:
    async with channel(pki, secured) as open_channel:
        stub = pb_grpc.RecommendationServiceStub(open_channel)
        for call, request in (
            (stub.GetRecommendations, pb.GetRecommendationsRequest(user_id="u1")),
            (stub.GetModelInfo, pb.GetModelInfoRequest()),
        ):
            with pytest.raises(aio.AioRpcError) as refused:
                await call(request, metadata=metadata, timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_health_is_open_and_reflection_needs_a_token(pki: Pki, secured: str) -> None:
    async with channel(pki, secured) as open_channel:
        status = await health_pb2_grpc.HealthStub(open_channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(open_channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(aio.AioRpcError) as refused:
            async for _ in stub.ServerReflectionInfo(iter([ask]), timeout=5):
                pass
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        answers = stub.ServerReflectionInfo(
            iter([ask]), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5
        )
        names = [s.name async for a in answers for s in a.list_services_response.service]
    assert SERVICE.full_name in names


async def test_plaintext_clients_cannot_talk_to_a_tls_port(secured: str) -> None:
    async with aio.insecure_channel(secured) as plain:
        stub = pb_grpc.RecommendationServiceStub(plain)
        with pytest.raises(aio.AioRpcError) as failed:
            await stub.GetPopularItems(pb.GetPopularItemsRequest(), timeout=5)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate(pki: Pki) -> None:
    credentials = server_credentials(pki.server_cert, pki.server_key, pki.ca)
    server, port, executor = await serve(credentials, None)
    target = f"127.0.0.1:{port}"
    try:
        async with channel(pki, target, client_cert=True) as open_channel:
            stub = pb_grpc.RecommendationServiceStub(open_channel)
            answer = await stub.GetPopularItems(pb.GetPopularItemsRequest(), timeout=5)
            assert answer.items
        async with channel(pki, target, client_cert=False) as open_channel:
            stub = pb_grpc.RecommendationServiceStub(open_channel)
            with pytest.raises(aio.AioRpcError) as refused:
                await stub.GetPopularItems(pb.GetPopularItemsRequest(), timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)
        executor.shutdown()


def test_tokens_file_ignores_comments_and_blank_lines() -> None:
    assert parse_tokens("# ops\n\n  abc  \ndef # the page\n") == [b"abc", b"def"]


def test_tokens_are_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    path = tokens_file(tmp_path, "old")
    tokens = TokenFile(path)
    assert tokens.accepts(b"old") and not tokens.accepts(b"new")
    path.write_text("new\n")
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    tokens._next_check = 0.0  # the next call checks the file (normally at most once a second)
    assert tokens.accepts(b"new") and not tokens.accepts(b"old")
    path.write_text("")  # emptied by mistake: the tokens last read stay
    os.utime(path, ns=(time.time_ns() + 2 * 10**9, time.time_ns() + 2 * 10**9))
    tokens._next_check = 0.0
    assert tokens.accepts(b"new")


@pytest.mark.parametrize("content", ["", "# only a comment\n"])
def test_a_tokens_file_without_tokens_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(content)
    with pytest.raises(SecurityConfigError, match=r"tokens_file .*tokens: (empty|no token)"):
        TokenFile(path)


def test_a_missing_certificate_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(
        SecurityConfigError, match=r"\[server.tls\] cert_file .*nope.pem: cannot read"
    ):
        server_credentials(tmp_path / "nope.pem", tmp_path / "nope.key")
