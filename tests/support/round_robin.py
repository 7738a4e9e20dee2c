"""A tiny TCP load balancer on loopback: each new connection goes to the next backend in
turn, bytes copied both ways, no headers added (like a Kubernetes Service without session
affinity, or a school's load balancer in TCP mode). Runs in threads; `stop()` ends it."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RoundRobin:
    backends: list[tuple[str, int]]
    served: Counter[int] = field(default_factory=Counter)  # connections per backend index
    listener: socket.socket = field(default_factory=socket.socket)

    @property
    def url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> RoundRobin:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        turns = itertools.cycle(range(len(self.backends)))
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed by stop()
                return
            index = next(turns)
            self.served[index] += 1
            backend = socket.create_connection(self.backends[index])
            for source, sink in ((client, backend), (backend, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    for sock in (source, sink):  # one side is done: end both directions
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    source.close()
