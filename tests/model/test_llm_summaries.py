"""LLMSummarizer against a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from model.errors import SummaryError
from model.summaries import LLMSummarizer

ITEMS = [{"item_id": "1", "title": "Toy Story (1995)", "category": "Animation"},
         {"item_id": "2", "title": "Heat (1995)", "category": "Action"}]


class _ChatServer:
    """Answers /v1/chat/completions; `script` holds status codes to return first."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script, self.requests = list(script or []), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body,
                                       "auth": self.headers.get("Authorization")})
                status = outer.script.pop(0) if outer.script else 200
                answer = {"choices": [{"message": {"role": "assistant",
                                                   "content": " Likes animation and action. "}}]}
                payload = json.dumps(answer if status == 200 else {"error": "nope"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        # shutdown() waits for the next poll: 0.5 s by default, per server
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def chat_server_factory():
    servers = []

    def make(script=None) -> _ChatServer:
        servers.append(_ChatServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_asks_once_then_answers_from_disk_cache(chat_server_factory, tmp_path):
    server = chat_server_factory()
    llm = LLMSummarizer(server.url, "mixtral", api_key="sk-test", cache_dir=tmp_path)
    assert llm.summarize(ITEMS) == "Likes animation and action."
    assert llm.summarize(ITEMS) == "Likes animation and action."
    assert len(server.requests) == 1
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "mixtral" and "Toy Story (1995)" in json.dumps(req["body"])
    # a new client with the same cache directory needs no request either
    LLMSummarizer(server.url, "mixtral", cache_dir=tmp_path).summarize(ITEMS)
    assert len(server.requests) == 1


def _record_waits(monkeypatch) -> list[float]:
    """The client's backoff sleeps, recorded instead of slept (1 s and 2 s cost the unit loop 3 s)."""
    waits: list[float] = []
    monkeypatch.setattr("model.summaries.time.sleep", waits.append)
    return waits


def test_retries_server_errors_and_rate_limits(chat_server_factory, tmp_path, monkeypatch):
    waits = _record_waits(monkeypatch)
    server = chat_server_factory(script=[503, 429])
    llm = LLMSummarizer(server.url, "m", cache_dir=tmp_path, retries=3)
    assert llm.summarize(ITEMS) == "Likes animation and action."
    assert len(server.requests) == 3
    assert waits == [1.0, 2.0]  # exponential backoff between the tries


def test_client_error_is_not_retried_and_names_the_status(chat_server_factory, tmp_path):
    server = chat_server_factory(script=[401])
    llm = LLMSummarizer(server.url, "m", cache_dir=tmp_path, retries=3)
    with pytest.raises(SummaryError, match="HTTP 401"):
        llm.summarize(ITEMS)
    assert len(server.requests) == 1


def test_gives_up_with_a_clear_error_when_the_endpoint_is_down(tmp_path, monkeypatch):
    waits = _record_waits(monkeypatch)
    llm = LLMSummarizer("http://127.0.0.1:9/v1", "m", cache_dir=tmp_path, retries=2, timeout_s=1)
    with pytest.raises(SummaryError, match="failed after 2 tries"):
        llm.summarize(ITEMS)
    assert waits == [1.0]  # one wait between the two tries
