"""Real servers for the tests: Dovecot on a loopback port, aiosmtpd in process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from imapclient import IMAPClient

IMAP_USER = "segreteria"
IMAP_PASSWORD = "imap-test-password"

DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u:LAYOUT=fs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

OAUTH2_PASSDB = """\
auth_mechanisms = plain login xoauth2 oauthbearer
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {ext}
}}
"""
OAUTH2_CONF_EXT = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mail_owner() -> tuple[int, int]:
    """Dovecot refuses uid 0 for mail: as root, store mail as nobody."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    return 65534, 65534


@dataclass
class Dovecot:
    """A throwaway Dovecot: self-contained config, passwd-file user, Maildir storage."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="credmail-dovecot-")))
    port: int = 0
    tls_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    oauth_introspection_url: str | None = None  # adds the oauth2 passdb (XOAUTH2, OAUTHBEARER)
    extra_conf: str = ""  # appended to dovecot.conf (the fleet benchmark's process limits)

    def start(self) -> Dovecot:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        uid, gid = _mail_owner()
        self.root.chmod(0o755)
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(exist_ok=True)
        if os.getuid() == 0:
            for sub in ("mail", "home"):
                os.chown(self.root / sub, uid, gid)
        (self.root / "passwd").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        if not self.ca_file.exists():
            make_certificate(self.root)
        conf = self.root / "dovecot.conf"
        conf.write_text(
            DOVECOT_CONF.format(
                root=self.root, uid=uid, gid=gid, port=self.port, tls_port=self.tls_port
            )
            + self._oauth_conf()
            + self.extra_conf
        )
        self.process = subprocess.Popen([binary, "-F", "-c", str(conf)])
        _wait_for_port(self.port, self.process, self.root / "dovecot.log")
        return self

    def _oauth_conf(self) -> str:
        if self.oauth_introspection_url is None:
            return ""
        ext = self.root / "oauth2.conf.ext"
        ext.write_text(OAUTH2_CONF_EXT.format(url=self.oauth_introspection_url))
        ext.chmod(0o644)
        return OAUTH2_PASSDB.format(ext=ext)

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate Dovecot presents (for 127.0.0.1 and localhost)."""
        return self.root / "cert.pem"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @contextmanager
    def client(self) -> Iterator[IMAPClient]:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(IMAP_USER, IMAP_PASSWORD)
        try:
            yield client
        finally:
            client.logout()

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["doveadm", "-c", str(self.root / "dovecot.conf"), *args],
            capture_output=True,
            text=True,
            check=check,
        )

    def session_pid(self) -> int:
        """The pid of the one IMAP session open now (the daemon's)."""
        out = self.doveadm("who", "-1").stdout
        (pid,) = [int(line.split()[2]) for line in out.splitlines()[1:] if line.strip()]
        return pid

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as client:
            client.append(folder, raw)

    def add_users(self, names: list[str]) -> None:
        """More mailboxes (one per school in the fleet tests), with the test password."""
        with (self.root / "passwd").open("a") as passwd:
            passwd.writelines(f"{name}:{{PLAIN}}{IMAP_PASSWORD}\n" for name in names)
        # Dovecot looks at the file at most once a second: wait until it knows the last one
        deadline = time.monotonic() + 10
        while True:
            client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
            try:
                client.login(names[-1], IMAP_PASSWORD)
                client.logout()
                return
            except Exception:
                client.shutdown()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def append_to(self, user: str, raw: bytes) -> None:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(user, IMAP_PASSWORD)
        try:
            client.append("INBOX", raw)
        finally:
            client.logout()

    def folder_messages(self, folder: str) -> dict[int, dict[bytes, Any]]:
        """UID -> {FLAGS, BODY[]} for a folder, read without setting \\Seen."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            return client.fetch(uids, [b"FLAGS", b"BODY.PEEK[]"]) if uids else {}

    def reset_mailbox(self) -> None:
        with self.client() as client:
            for flags, _delim, name in client.list_folders():
                if name != "INBOX" and b"\\Noselect" not in flags:
                    client.delete_folder(name)
            for _flags, _delim, name in client.list_folders():
                if name != "INBOX":
                    client.delete_folder(name)
            client.select_folder("INBOX")
            uids = client.search(["ALL"])
            if uids:
                client.delete_messages(uids)
                client.expunge()


def make_certificate(directory: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("dovecot did not open its port")


class RecordingHandler:
    """aiosmtpd handler that keeps every accepted message; can be told to refuse."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse_with: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def parsed(self) -> list[EmailMessage]:
        out = []
        for _from, _rcpts, content in self.messages:
            msg = message_from_bytes(content, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


@dataclass
class SmtpServer:
    """aiosmtpd's threaded controller; with `certificate`, STARTTLS and AUTH are required."""

    handler: RecordingHandler = field(default_factory=RecordingHandler)
    port: int = 0
    controller: Controller | None = None
    certificate: Path | None = None
    credentials: tuple[str, str] = ("smtp-user", "smtp-test-password")
    options: dict[str, Any] = field(default_factory=dict)  # aiosmtpd's SMTP(...) keywords

    def start(self) -> SmtpServer:
        self.port = self.port or free_port()
        kwargs: dict[str, Any] = dict(self.options)
        if self.certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificate, self.certificate.with_name("key.pem"))
            kwargs |= {
                "tls_context": context,
                "require_starttls": True,
                "authenticator": self._authenticate,
                "auth_required": True,
            }
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        login = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=login == self.credentials)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


PGBOUNCER_CONF = """\
[databases]
* = host={pg_host} port={pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_db_connections = {pool_size}
max_client_conn = 1000
server_idle_timeout = 30
log_connections = 0
log_disconnections = 0
logfile = {root}/pgbouncer.log
pidfile = {root}/pgbouncer.pid
admin_users = {user}
ignore_startup_parameters = extra_float_digits,options
{run_as}
"""


@dataclass
class PgBouncer:
    """Debian's PgBouncer on a loopback port, in transaction mode, in front of the test
    PostgreSQL: at most `pool_size` server connections per database, whatever the clients."""

    upstream: str  # a postgresql:// url (host, port, user are taken from it)
    pool_size: int = 3
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="credmail-pgb-")))
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> PgBouncer:
        from sqlalchemy.engine import make_url

        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise RuntimeError("pgbouncer is not installed: apt-get install pgbouncer")
        url = make_url(self.upstream)
        user = url.username or "postgres"
        self.port = self.port or free_port()
        run_as = ""
        if os.getuid() == 0:  # PgBouncer refuses to run as root: drop to an unprivileged user
            run_as = "user = nobody"
            self.root.chmod(0o777)
        (self.root / "userlist.txt").write_text(f'"{user}" ""\n')
        conf = self.root / "pgbouncer.ini"
        conf.write_text(
            PGBOUNCER_CONF.format(
                pg_host=url.host or "127.0.0.1",
                pg_port=url.port or 5432,
                port=self.port,
                root=self.root,
                pool_size=self.pool_size,
                user=user,
                run_as=run_as,
            )
        )
        for path in (conf, self.root / "userlist.txt"):
            path.chmod(0o644)
        self.process = subprocess.Popen([binary, "-q", str(conf)])
        _wait_for_port(self.port, self.process, self.root / "pgbouncer.log")
        return self

    def url(self, database: str) -> str:
        """The url an instance uses to reach `database` through PgBouncer."""
        from sqlalchemy.engine import make_url

        upstream = make_url(self.upstream)
        return upstream.set(host="127.0.0.1", port=self.port, database=database).render_as_string(
            hide_password=False
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
