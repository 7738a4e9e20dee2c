"""Mail servers that stop answering: a loopback port that accepts and never says a word,
and a relay to a real server that can fall silent mid-session (connections stay open)."""

from __future__ import annotations

import select
import socket
import threading
import time


class Silent:
    """Accepts TCP connections and keeps them open without ever writing; with `target`,
    relays each connection to it until `silence()`."""

    def __init__(self, target: int | None = None) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.accepted = 0
        self.silent = target is None
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        """From now on nothing passes, either way; the connections stay open."""
        self.silent = True

    def close(self) -> None:
        self.closed.set()
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self.sockets.append(client)
            if self.target is not None:
                server = socket.create_connection(("127.0.0.1", self.target))
                self.sockets.append(server)
                for a, b in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while not self.closed.is_set():
            if self.silent:
                time.sleep(0.1)  # read nothing, pass nothing: the peer waits
                continue
            try:
                if not select.select([source], [], [], 0.1)[0]:
                    continue
                data = source.recv(65536)
                if not data:
                    return
                sink.sendall(data)
            except (OSError, ValueError):  # closed
                return
