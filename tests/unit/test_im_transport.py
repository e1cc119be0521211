"""How the IM client meets a connection that breaks under a request: a request that only reads
is sent again, one that changes something never is, and what still fails says why in one line.

The server here is a bare socket that reads each request and then either closes the connection
without a word (as uvicorn, IM's REST server, does to an idle keep-alive connection) or answers
as IM does, so the count of requests it saw is exact."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest

from primage import im_auth, im_rest


class BreakingServer:
    """Closes the first `breaks` connections after reading their request; answers the others."""

    def __init__(self, breaks: int) -> None:
        self.breaks = breaks
        self.requests: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if not data:
                    continue
                self.requests.append(data.split(b"\r\n", 1)[0].decode())
                if len(self.requests) <= self.breaks:
                    continue  # closed with no answer
                body = json.dumps({"version": "1.0-test", "uri": f"{self.url}/infrastructures/inf-1"}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setattr(im_rest, "RESEND_PAUSE", 0.01)
    auth = tmp_path / "auth.dat"
    fd = os.open(auth, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"id = im; type = InfrastructureManager; username = alice; password = not-shown\n")
    os.close(fd)
    servers = []

    def make(breaks: int) -> tuple[im_rest.IMClient, BreakingServer]:
        server = BreakingServer(breaks)
        servers.append(server)
        return im_rest.IMClient(server.url, im_auth.load(auth)), server

    yield make
    for server in servers:
        server.close()


def test_a_read_whose_connection_broke_is_sent_again(client):
    im, server = client(breaks=im_rest.RESEND_ATTEMPTS - 1)
    assert im.version() == "1.0-test"
    assert server.requests == ["GET /version HTTP/1.1"] * im_rest.RESEND_ATTEMPTS


def test_a_read_that_keeps_breaking_fails_saying_the_server_closed_it(client):
    im, server = client(breaks=im_rest.RESEND_ATTEMPTS)
    with pytest.raises(im_rest.IMUnreachable) as raised:
        im.version()
    assert len(server.requests) == im_rest.RESEND_ATTEMPTS
    assert str(raised.value).startswith(f"IM at {server.url} is not answering (the server closed the connection)")


def test_a_creation_whose_connection_broke_is_never_sent_twice(client):
    im, server = client(breaks=1)
    with pytest.raises(im_rest.IMUnreachable, match="the server closed the connection"):
        im.create("tosca_definitions_version: tosca_simple_yaml_1_0\n", "tosca", "t.yaml")
    assert server.requests == ["POST /infrastructures?async=1 HTTP/1.1"]


def test_a_refused_connection_is_not_tried_again(client, monkeypatch):
    sleeps = []
    monkeypatch.setattr(im_rest.time, "sleep", sleeps.append)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    im, _ = client(breaks=0)
    im.url = f"http://127.0.0.1:{port}"
    with pytest.raises(im_rest.IMUnreachable, match=r"not answering \(connection refused\)"):
        im.version()
    assert sleeps == []
