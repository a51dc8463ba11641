"""A TCP relay in front of a real server that can stop answering: a hanging server on demand.

While holding, the relay accepts each new connection and says nothing (the client waits for
a greeting or a response, as it would from a hung SMTP or CalDAV server). On ``release()``
every held connection, and every later one, is relayed byte for byte to the real server, so
the conversation that was stuck simply goes on.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class HoldingRelay:
    def __init__(self, target_port: int, *, holding: bool = False) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open = threading.Event()
        if not holding:
            self._open.set()
        self.held = threading.Event()  # set once a connection arrived while holding
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self) -> None:
        self.held.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.set()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self._open.is_set():
                self.held.set()
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self._open.wait()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
        except OSError:
            client.close()
            return
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, target), daemon=True).start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
