"""The simulator's HTTP server stays quiet when a client goes away mid-request, and keeps serving."""

from __future__ import annotations

import socket
import struct

import httpx

from sim.fleet import Fleet
from sim.server import SimServer


def _hang_up_abruptly(url: str, path: str) -> None:
    """Send a request and reset the connection at once (SO_LINGER 0), as a timed-out probe does."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: sim\r\n\r\n".encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_vanished_client_is_no_traceback(fleet: Fleet, capfd) -> None:
    server = SimServer(fleet, seed=3).start()
    try:
        for _ in range(20):
            _hang_up_abruptly(server.url, "/topology")
        assert httpx.get(f"{server.url}/healthz", timeout=10).json()["ok"] is True
        # what the server reports about a reset connection, whichever point it was at (read or write)
        for exc in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "Connection reset by peer")):
            try:
                raise exc
            except OSError:
                server._httpd.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err


def test_other_handler_errors_are_still_reported(fleet: Fleet, capfd) -> None:
    server = SimServer(fleet, seed=3)
    try:
        raise ValueError("a bug in a handler")
    except ValueError:
        server._httpd.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.stop() if server._thread else server._httpd.server_close()
    assert "a bug in a handler" in capfd.readouterr().err
