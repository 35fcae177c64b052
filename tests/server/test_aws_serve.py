"""`recs serve --aws-port` as a user runs it: a real process, boto3, the `aws` CLI and gRPC.

A `recs serve` process on the tiny model with a serve.toml naming Personalize campaign
ARNs (`[personalize]`), filter ARNs (`[personalize.filter_arns]`) and `[filters]`, its
event store in a temporary state dir. Checked: the configured ARNs are answered on the AWS
port (and the stand-ins they replace are not), the `aws` CLI gets what boto3 gets, events
and items sent on either protocol are seen on the other and survive a restart, SIGTERM
stops both listeners cleanly, and a taken AWS port stops the start with one line.

The gRPC GetRecommendations applies the default filter (exclude_interacted) when the
request names none; a Personalize request without filterArn is unfiltered. So gRPC
answers are compared with AWS answers under that filter's ARN, and AWS answers without a
filter with each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
import tomli_w
from botocore.config import Config

from recs.backends.local.event_store import EventStore
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from recs.client import Event, RecsClient
from recs.server.aws_protocol import stand_in_arn
from tests.backends.contract import BEST_NEXT, HISTORY, TINY_DATASET
from tests.test_end_to_end import ENV, RECS, free_port

AWS_CLI = str(Path(sys.executable).parent / "aws")
REGION = "eu-west-1"
ACCOUNT = f"arn:aws:personalize:{REGION}:123456789012"
UP = f"{ACCOUNT}:campaign/videos-user-personalization"
SIMS = f"{ACCOUNT}:campaign/videos-sims"
POPULAR = f"{ACCOUNT}:campaign/videos-popularity"
RANKING = f"{ACCOUNT}:campaign/videos-ranking"
EXCLUDE_INTERACTED = f"{ACCOUNT}:filter/videos-exclude-interacted"
CATEGORY = f"{ACCOUNT}:filter/videos-category"
TRACKING_ID = "0f1e2d3c-videos-tracker"
ITEMS_DATASET = f"{ACCOUNT}:dataset/videos/ITEMS"
ALL = 25
GENEROUS = 30.0  # seconds: waits only, nothing is timed
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "y"}
ONE_ATTEMPT = Config(retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aws-serve") / "model"
    train(TINY_DATASET, out, TrainParams(factors=8, iterations=15, random_state=0))
    return out


def write_config(path: Path, model_dir: Path, state_dir: Path, **server: Any) -> Path:
    path.write_text(
        tomli_w.dumps(
            {
                "backend": "local",
                "catalog": str(TINY_DATASET / "items.csv"),
                "server": {"host": "127.0.0.1", "grace_seconds": 1.0, **server},
                "filters": {"category": "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)"},
                "local": {"model_dir": str(model_dir), "state_dir": str(state_dir)},
                "personalize": {
                    "region": REGION,
                    "user_personalization_campaign_arn": UP,
                    "similar_items_campaign_arn": SIMS,
                    "popularity_campaign_arn": POPULAR,
                    "personalized_ranking_campaign_arn": RANKING,
                    "event_tracking_id": TRACKING_ID,
                    "items_dataset_arn": ITEMS_DATASET,
                    "filter_arns": {"exclude_interacted": EXCLUDE_INTERACTED, "category": CATEGORY},
                },
            }
        )
    )
    return path


class Serving:
    """`recs serve` in its own process; `aws_url` is its AWS-protocol endpoint."""

    def __init__(self, config: Path, log: Path, aws_port_in_config: int | None = None) -> None:
        """`aws_port_in_config`: the `[server] aws_port` of `config`; without it, a free
        port is given by `--aws-port`."""
        self.port = free_port()
        self.aws_port = aws_port_in_config or free_port()
        flags = [] if aws_port_in_config else ["--aws-port", str(self.aws_port)]
        self.log_path = log
        self._log = log.open("a")
        self.process = subprocess.Popen(
            [*RECS, "serve", "--config", str(config), "--port", str(self.port), *flags],
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=ENV,
        )  # fmt: skip
        ready = self.process.stdout.readline() if self.process.stdout else ""
        if not ready.startswith("ready:"):
            self.stop()
            raise AssertionError(f"recs serve did not start: {log.read_text()}")
        self.target = f"127.0.0.1:{self.port}"
        self.aws_url = f"http://127.0.0.1:{self.aws_port}"

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.aws_url, config=ONE_ATTEMPT, **CREDENTIALS)

    def terminate(self) -> int:
        """SIGTERM, then the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=GENEROUS)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()


@contextlib.contextmanager
def serving(config: Path, log: Path, aws_port_in_config: int | None = None) -> Iterator[Serving]:
    server = Serving(config, log, aws_port_in_config)
    try:
        yield server
    finally:
        server.stop()


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["itemId"] for item in items]


def refused_code(work: Callable[[], object]) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        work()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def eventually(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + GENEROUS
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def aws_cli(*args: str, **env: str) -> dict[str, Any]:
    """`aws <args> --output json` with throw-away credentials and no config files."""
    clean = {k: v for k, v in ENV.items() if not k.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE"))}
    done = subprocess.run(
        [AWS_CLI, *args, "--region", "us-east-1", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=GENEROUS,
        env={
            **clean,
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            **env,
        },
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_configured_arns_are_answered_and_the_aws_cli_gets_what_boto3_gets(
    model_dir: Path, tmp_path: Path
) -> None:
    aws_port = free_port()  # from the file this time: [server] aws_port
    config = write_config(tmp_path / "serve.toml", model_dir, tmp_path / "state", aws_port=aws_port)
    with serving(config, tmp_path / "serve.log", aws_port_in_config=aws_port) as server:
        assert f"on {server.aws_url}" in server.log()
        runtime = server.client("personalize-runtime")

        answer = runtime.get_recommendations(campaignArn=UP, userId="u01", numResults=ALL)
        unfiltered = ids(answer["itemList"])
        assert HISTORY["u01"] <= set(unfiltered)  # nothing filtered, not even what u01 saw
        assert all("score" in item for item in answer["itemList"])
        similar = runtime.get_recommendations(campaignArn=SIMS, itemId="a1", numResults=3)
        assert similar["itemList"] and all(set(i) == {"itemId"} for i in similar["itemList"])
        popular = runtime.get_recommendations(campaignArn=POPULAR, numResults=3)
        assert ids(popular["itemList"]) == ["p", "a1", "a2"]
        ranked = runtime.get_personalized_ranking(
            campaignArn=RANKING, userId="u04", inputList=["b1", "a3", "unknown"]
        )
        assert ids(ranked["personalizedRanking"])[-1] == "unknown"
        sports = runtime.get_recommendations(
            campaignArn=UP,
            userId="u04",
            filterArn=CATEGORY,
            filterValues={"CATEGORIES": '"sports"'},
        )
        assert set(ids(sports["itemList"])) == {"b1", "b2", "b3"}
        # The stand-in ARNs the configured ones replace are unknown here, as on AWS.
        stand_in = stand_in_arn(REGION, "campaign", "local-user-personalization")
        assert refused_code(
            lambda: runtime.get_recommendations(campaignArn=stand_in, userId="u01")
        ) == ("ResourceNotFoundException", 404)
        stand_in_filter = stand_in_arn(REGION, "filter", "local-exclude_interacted")
        assert refused_code(
            lambda: runtime.get_recommendations(
                campaignArn=UP, userId="u01", filterArn=stand_in_filter
            )
        ) == ("ResourceNotFoundException", 404)

        # gRPC's default filter and its filter by name answer what AWS answers under the
        # filter's ARN.
        filtered = runtime.get_recommendations(
            campaignArn=UP, userId="u01", numResults=ALL, filterArn=EXCLUDE_INTERACTED
        )
        with RecsClient(server.target) as grpc_client:
            by_name = grpc_client.recommend("u01", ALL, filter_name="exclude_interacted")
            by_default = grpc_client.recommend("u01", ALL)
        assert by_name.item_ids == ids(filtered["itemList"]) == by_default.item_ids
        assert [item.score for item in by_name.items] == pytest.approx(
            [item["score"] for item in filtered["itemList"]]
        )

        # The aws CLI, pointed here by --endpoint-url, then by the standard variable.
        cli = aws_cli(
            "personalize-runtime", "get-recommendations",
            "--endpoint-url", server.aws_url,
            "--campaign-arn", UP, "--user-id", "u01", "--num-results", "5",
        )  # fmt: skip
        assert ids(cli["itemList"]) == unfiltered[:5]
        assert cli["recommendationId"]
        cli = aws_cli(
            "personalize-runtime", "get-recommendations",
            "--campaign-arn", UP, "--user-id", "u01", "--num-results", str(ALL),
            "--filter-arn", EXCLUDE_INTERACTED,
            AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME=server.aws_url,
        )  # fmt: skip
        assert ids(cli["itemList"]) == by_name.item_ids

        assert server.terminate() == 0


def test_events_and_items_cross_between_grpc_and_aws_and_survive_a_restart(
    model_dir: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "serve.toml", model_dir, tmp_path / "state")
    with serving(config, tmp_path / "serve.log") as server:
        runtime = server.client("personalize-runtime")
        events = server.client("personalize-events")
        with RecsClient(server.target) as grpc_client:
            # AWS PutEvents -> gRPC: u04's best next video, once watched, leaves gRPC's answer.
            best = BEST_NEXT["u04"]
            assert best in grpc_client.recommend("u04", ALL).item_ids
            events.put_events(
                trackingId=TRACKING_ID,
                userId="u04",
                sessionId="u04-aws",
                eventList=[
                    {
                        "eventId": "aws-1",
                        "eventType": "watched",
                        "itemId": best,
                        "sentAt": time.time(),
                    }
                ],
            )
            eventually(
                lambda: best not in grpc_client.recommend("u04", ALL).item_ids,
                f"{best} still recommended to u04 over gRPC",
            )

            # gRPC PutEvents -> AWS: gone under the exclude filter's ARN, kept without filter.
            best = BEST_NEXT["u08"]
            assert best in ids(
                runtime.get_recommendations(
                    campaignArn=UP, userId="u08", numResults=ALL, filterArn=EXCLUDE_INTERACTED
                )["itemList"]
            )
            grpc_client.put_events(
                "u08-grpc", [Event("watched", best, event_id="grpc-1")], user_id="u08"
            )

            def gone_from_aws() -> bool:
                answer = runtime.get_recommendations(
                    campaignArn=UP, userId="u08", numResults=ALL, filterArn=EXCLUDE_INTERACTED
                )
                return best not in ids(answer["itemList"])

            eventually(gone_from_aws, f"{best} still recommended to u08 over AWS")
            unfiltered = runtime.get_recommendations(campaignArn=UP, userId="u08", numResults=ALL)
            assert best in ids(unfiltered["itemList"])

            # AWS PutItems -> the catalog both protocols enrich answers from.
            events.put_items(
                datasetArn=ITEMS_DATASET,
                items=[
                    {
                        "itemId": "aws-item",
                        "properties": json.dumps({"title": "Sent over AWS", "categories": "news"}),
                    }
                ],
            )
            eventually(
                lambda: grpc_client.rerank("u04", ["aws-item"]).items[0].title == "Sent over AWS",
                "the item put over AWS has no title over gRPC",
            )
            ranked = runtime.get_personalized_ranking(
                campaignArn=RANKING,
                userId="u04",
                inputList=["a1", "aws-item"],
                metadataColumns={"ITEMS": ["TITLE", "CATEGORIES"]},
            )
            assert ranked["personalizedRanking"][-1] == {
                "itemId": "aws-item",
                "metadata": {"TITLE": "Sent over AWS", "CATEGORIES": "news"},
            }

        assert server.terminate() == 0
        assert "stopped" in server.log().splitlines()[-1]
        assert refuses_connections(server.aws_port)
        assert refuses_connections(server.port)

    # The same state dir: both events and the item are still there.
    with serving(config, tmp_path / "serve-again.log") as again:
        runtime = again.client("personalize-runtime")
        answer = runtime.get_recommendations(
            campaignArn=UP, userId="u04", numResults=ALL, filterArn=EXCLUDE_INTERACTED
        )
        assert BEST_NEXT["u04"] not in ids(answer["itemList"])
        with RecsClient(again.target) as grpc_client:
            assert BEST_NEXT["u08"] not in grpc_client.recommend("u08", ALL).item_ids
        ranked = runtime.get_personalized_ranking(
            campaignArn=RANKING,
            userId="u04",
            inputList=["aws-item"],
            metadataColumns={"ITEMS": ["TITLE"]},
        )
        assert ranked["personalizedRanking"][0]["metadata"] == {"TITLE": "Sent over AWS"}
        assert again.terminate() == 0


def test_sigterm_under_aws_load_answers_every_request_it_took_and_closes_the_port(
    model_dir: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "serve.toml", model_dir, tmp_path / "state")
    with serving(config, tmp_path / "serve.log") as server:
        answered: list[int] = []
        failures: list[Exception] = []
        lock = threading.Lock()
        go = threading.Event()

        # Clients made here: boto3's default session must not build them in several threads.
        clients = [
            (server.client("personalize-runtime"), server.client("personalize-events"))
            for _ in range(4)
        ]

        def hammer(k: int) -> None:
            runtime, events = clients[k]
            n = 0
            while True:
                try:
                    if n % 2:
                        answer = runtime.get_recommendations(
                            campaignArn=UP, userId=f"u0{1 + (k + n) % 9}", numResults=5
                        )
                    else:
                        answer = events.put_events(
                            trackingId=TRACKING_ID,
                            userId=f"load-{k}",
                            sessionId=f"load-{k}",
                            eventList=[{"eventType": "watched", "itemId": "p", "sentAt": 1.7e9}],
                        )
                except (
                    botocore.exceptions.EndpointConnectionError,
                    botocore.exceptions.ConnectionClosedError,
                ):
                    return  # the listener is closed (or closed the idle connection): no answer
                except Exception as exc:  # a wrong answer: recorded
                    with lock:
                        failures.append(exc)
                    return
                with lock:
                    answered.append(answer["ResponseMetadata"]["HTTPStatusCode"])
                n += 1
                if n == 5:
                    go.set()

        threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(4)]
        for thread in threads:
            thread.start()
        assert go.wait(GENEROUS)
        assert server.terminate() == 0
        for thread in threads:
            thread.join(GENEROUS)
        assert not failures, failures
        assert len(answered) >= 5
        assert set(answered) == {200}
        assert "stopped" in server.log()
        assert refuses_connections(server.aws_port)


IN_FLIGHT = [
    pytest.param(
        "/recommendations",
        {"campaignArn": UP, "userId": "u04", "numResults": 3},
        id="GetRecommendations",
    ),
    pytest.param(
        "/items",
        {
            "datasetArn": ITEMS_DATASET,
            "items": [{"itemId": "late", "properties": '{"title": "t"}'}],
        },
        id="PutItems",
    ),
]


@pytest.mark.parametrize(("path", "members"), IN_FLIGHT)
def test_sigterm_answers_a_request_whose_body_is_still_arriving(
    model_dir: Path, tmp_path: Path, path: str, members: dict[str, Any]
) -> None:
    """The endpoint waits for a request it has started (its body still arriving) before
    aiohttp's shutdown, which stops reading every connection; and the backend thread pool
    (PutItems runs there) outlives the endpoint, though gRPC stops first."""
    config = write_config(tmp_path / "serve.toml", model_dir, tmp_path / "state")
    body = json.dumps(members).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with serving(config, tmp_path / "serve.log") as server:
        with socket.create_connection(("127.0.0.1", server.aws_port), timeout=10) as conn:
            conn.sendall(head + body[:10])
            time.sleep(0.2)  # the endpoint has the request and is reading its body
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)  # gRPC has drained (0.1 s quiet) and stopped meanwhile
            conn.sendall(body[10:])
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert server.process.wait(timeout=GENEROUS) == 0
        assert answer.startswith(b"HTTP/1.1 200"), answer
    if path == "/items":
        store = EventStore(tmp_path / "state").open()
        try:
            assert [row.item.item_id for row in store.items_after(0)] == ["late"]
        finally:
            store.close()


def test_a_taken_aws_port_stops_the_start_with_one_line_naming_it(model_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*RECS, "serve", "--model", str(model_dir), "--port", "0", "--aws-port", str(port)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=GENEROUS,
        )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "ERROR" in lines[0] and f"127.0.0.1:{port}" in lines[0]
