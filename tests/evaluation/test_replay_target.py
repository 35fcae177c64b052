"""`recs evaluate replay --target`: the replay against a running service over gRPC.

The service is a real gRPC server on a free loopback port (the page tests' `ServiceThread`),
serving the local engine with the split's model and a fresh event store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from recs.backends.base import Event
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.cli.main import main
from recs.client import RecsClient
from recs.evaluation.replay import GrpcReplaySystem, cold_session_id, replay
from recs.evaluation.split import read_holdout, read_train
from recs.server.catalog import Catalog
from tests.evaluation.test_replay import split_and_model  # noqa: F401
from tests.ui.conftest import ServiceThread, free_port

SETTLE = "0.1"  # the in-process engine applies an event within milliseconds


@pytest.fixture
def service(split_and_model, tmp_path: Path) -> Iterator[ServiceThread]:  # noqa: F811
    """The split's model behind a real gRPC server, its event store fresh."""
    _split, model = split_and_model
    backend = LocalBackend(
        LocalBackendConfig(model_dir=model, state_dir=tmp_path / "served-state", mmap=False)
    )
    backend.start()
    running = ServiceThread(backend, Catalog()).start()
    yield running
    running.stop()
    backend.close()


class RecordingSystem(GrpcReplaySystem):
    """Keeps every question with its answer and every event sent, in order."""

    def __init__(self, client: RecsClient, settle: float) -> None:
        super().__init__(client, settle)
        self.log: list[tuple[str, ...]] = []

    def recommend(self, subject: str, num_results: int) -> list[str]:
        answer = super().recommend(subject, num_results)
        self.log.append(("ask", subject, *answer))
        return answer

    def put_event(self, user_id: str | None, session_id: str, event: Event) -> None:
        super().put_event(user_id, session_id, event)
        self.log.append(("sent", session_id, event.item_id, user_id or ""))


def test_an_item_sent_is_never_recommended_afterwards(split_and_model, service) -> None:  # noqa: F811
    split, _model = split_and_model
    train, holdout = read_train(split), read_holdout(split)
    users = sorted(set(holdout.column("USER_ID").to_pylist()))
    warm_users, cold_users = users[:4], users[4:6]
    system = RecordingSystem(RecsClient(service.target), settle=float(SETTLE))
    try:
        result = replay(
            system, system, train, holdout, warm_users, cold_users,
            k=10, cold_steps=6, cold_session=cold_session_id(3),
        )  # fmt: skip
    finally:
        system.close()

    assert result.warm["realtime"]["steps"] == result.warm["static"]["steps"] > 0
    static: dict[str, list[str]] = {}
    sent: dict[str, list[str]] = {}
    changed = 0
    for kind, subject, *rest in system.log:
        if kind == "sent":
            item, user_id = rest
            # Warm users send as themselves; cold users as an anonymous, fresh session.
            if subject in warm_users:
                assert user_id == subject
            else:
                assert user_id == "" and subject.startswith("replay-cold-3-")
                assert subject.removeprefix("replay-cold-3-") in cold_users
            sent.setdefault(subject, []).append(item)
            continue
        answer = rest
        static.setdefault(subject, answer)  # the first question is asked before any event
        already = set(sent.get(subject, ())) & set(answer)
        assert not already, f"{subject} was recommended {already} after sending it"
        changed += bool(sent.get(subject)) and answer != static[subject]
    assert {s for s in sent if s in warm_users} == set(warm_users)
    assert len([s for s in sent if s.startswith("replay-cold-")]) == len(cold_users)
    assert changed > 0


def test_replay_command_against_a_target(split_and_model, service, tmp_path, caplog) -> None:  # noqa: F811
    """The same model asked in-process and over gRPC gives the same static figures."""
    split, model = split_and_model
    common = ["evaluate", "replay", "--split", str(split), "--cold-fraction", "0.5",
              "--cold-steps", "6"]  # fmt: skip
    local, served = tmp_path / "local.json", tmp_path / "served.json"
    assert main([*common, "--model", str(model), "--json", str(local)]) == 0
    with caplog.at_level(logging.WARNING):
        status = main(
            [*common, "--target", service.target, "--settle", SETTLE, "--json", str(served)]
        )
    assert status == 0
    assert "must have a fresh event store" in caplog.text
    by_model, by_target = json.loads(local.read_text()), json.loads(served.read_text())
    assert by_target["target"] == service.target and by_target["backend"] == "local"
    assert by_target["settle"] == float(SETTLE) and "model" not in by_target
    assert by_target["warm"]["static"] == by_model["warm"]["static"]
    assert by_target["warm"]["realtime"]["steps"] == by_model["warm"]["realtime"]["steps"] > 0
    assert by_target["cold_users"] == by_model["cold_users"] == 4
    assert by_target["cold"]["realtime"]["steps"] > 0


@pytest.mark.parametrize(
    ("system", "says"),
    [
        ([], "one of the arguments --model --target is required"),
        (
            ["--model", "m", "--target", "h:1"],
            "argument --target: not allowed with argument --model",
        ),
    ],
)
def test_model_and_target_are_one_choice(system, says, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["evaluate", "replay", "--split", str(tmp_path), *system])
    assert exited.value.code == 2
    assert f"recs evaluate replay: error: {says}" in capsys.readouterr().err


def test_an_unreachable_target_is_a_one_line_error(split_and_model, caplog, capsys) -> None:  # noqa: F811
    split, _model = split_and_model
    target = f"127.0.0.1:{free_port()}"
    status = main(["evaluate", "replay", "--split", str(split), "--target", target,
                   "--timeout", "2"])  # fmt: skip
    assert status == 1
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    message = record.getMessage()
    assert message.startswith(f"cannot replay: {target}: UNAVAILABLE: ") and "\n" not in message
    assert record.exc_info is None and "Traceback" not in capsys.readouterr().err
