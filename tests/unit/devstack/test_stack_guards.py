"""The stack's refusals: a port held by a stranger, and services that live elsewhere."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from tgstream.config import load_settings
from tgstream.devstack.llama_server import LlamaServer
from tgstream.devstack.paths import DevPaths
from tgstream.devstack.service import DevStackError
from tgstream.devstack.stack import DevStack, Outcome, State


def test_port_taken_by_a_process_that_is_not_redis_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        settings = load_settings(redis_url=f"redis://127.0.0.1:{port}/0", dev_dir=tmp_path)
        stack = DevStack(settings)

        [result] = stack.up(stack.select(["redis"]))

    assert result.outcome is Outcome.FAILED
    assert f"port {port} taken by another process" in result.error
    assert "REDIS_URL" in result.error
    assert not stack.paths.pid_file("redis").exists()


def test_kafka_controller_port_is_checked_too(tmp_path: Path) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        controller = stranger.getsockname()[1]
        broker = controller - 1
        settings = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{broker}", dev_dir=tmp_path)
        stack = DevStack(settings)

        [result] = stack.up(stack.select(["kafka"]))

    assert result.outcome is Outcome.FAILED
    assert f"port {controller} taken by another process" in result.error


def test_non_loopback_urls_are_left_alone(tmp_path: Path) -> None:
    settings = load_settings(
        redis_url="redis://redis.internal.example:6379/0",
        database_url="postgresql://app@db.internal.example:5432/tgstream",
        dev_dir=tmp_path,
    )
    stack = DevStack(settings)

    results = stack.up(stack.select(["redis", "postgres"]))

    assert [r.outcome for r in results] == [Outcome.EXTERNAL, Outcome.EXTERNAL]
    states = {row.name: row.state for row in stack.status()}
    assert states["redis"] is State.EXTERNAL
    assert states["postgres"] is State.EXTERNAL


def test_unknown_service_names_are_rejected(tmp_path: Path) -> None:
    stack = DevStack(load_settings(dev_dir=tmp_path))

    with pytest.raises(DevStackError, match=r"zookeeper.*kafka"):
        stack.select(["zookeeper"])


class _ModelsOnly(http.server.BaseHTTPRequestHandler):
    """Lists the model, then dies on a completion, as a llama.cpp build for another CPU does."""

    def do_GET(self) -> None:
        body = json.dumps({"data": [{"id": "smollm2-135m-instruct"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *_: object) -> None:
        pass


class _Answers(_ModelsOnly):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"choices": [{"message": {"content": "Hi"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize(("handler", "fails"), [(_ModelsOnly, True), (_Answers, False)])
def test_llama_must_answer_a_first_completion_not_only_list_models(
    tmp_path: Path, handler: type[http.server.BaseHTTPRequestHandler], fails: bool
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = load_settings(
            openai_base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            llm_model="smollm2-135m-instruct",
            dev_dir=tmp_path,
        )
        llama = LlamaServer(settings, DevPaths.at(tmp_path))
        assert llama.probe()
        if fails:
            with pytest.raises(DevStackError, match="failed its first completion"):
                llama.after_start()
        else:
            llama.after_start()
    finally:
        server.shutdown()
        server.server_close()
