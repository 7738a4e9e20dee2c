"""systemd's notify protocol (one datagram per message; no extra package) and a watchdog
heartbeat that pings only while the watcher makes progress."""

from __future__ import annotations

import os
import socket
import time


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send `message` (e.g. READY=1) to $NOTIFY_SOCKET; False when not under systemd."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
        except OSError:
            return False
    return True


class Heartbeat:
    """Call `beat()` after each successful sync or healthy IDLE check; it sends READY=1
    once and WATCHDOG=1 at most twice per watchdog period. No beats, no pings: a hang or
    a failing sync gets the service restarted by systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        usec = int(self.environ.get("WATCHDOG_USEC", "0") or 0)
        self.every = usec / 2_000_000 if usec else None
        self.ready = False
        self.last_ping = 0.0

    def beat(self) -> None:
        if not self.ready:
            notify("READY=1", self.environ)
            self.ready = True
        now = time.monotonic()
        if self.every is not None and now - self.last_ping >= self.every:
            notify("WATCHDOG=1", self.environ)
            self.last_ping = now

    def status(self, text: str) -> None:
        """The one-line state systemctl shows (STATUS=)."""
        notify(f"STATUS={text}", self.environ)

    def stopping(self) -> None:
        notify("STOPPING=1", self.environ)
