"""A throwaway OpenLDAP slapd: its own config and database in a temp dir, a loopback port.

The tree (dc=scuola,dc=test): a service account `cn=credmail,ou=services` that may write
users' userPassword (and nothing else), and people under `ou=people`. Two of them,
`uid=severo` and the sample school's G1002, are under a ppolicy that wants 30 characters,
so the directory itself can refuse a password that credmail's policy accepts. Stop the
server by its own pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ldap3 import Connection, Server

from tests.support.servers import free_port, make_certificate

SUFFIX = "dc=scuola,dc=test"
SERVICE_DN = f"cn=credmail,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-account-pw"
PEOPLE = f"ou=people,{SUFFIX}"

# username -> (first name, last name, old password)
USERS = {
    "mrossi": ("Mario", "Rossi", "vecchia-password-mario"),
    "gverdi": ("Giulia", "Verdi", "vecchia-password-giulia"),
    "severo": ("Sara", "Severo", "vecchia-password-sara"),
    "doppio": ("Dino", "Doppio", "vecchia-password-dino"),
    # the sample school's people (credmail.samples), for the reset page's tests
    "G1001": ("Mario", "Rossi", "vecchia-password-G1001"),
    "G1002": ("Anna", "Bianchi", "vecchia-password-G1002"),
}
STRICT_USER = "severo"  # under the 30-character ppolicy
STRICT_USERS = (STRICT_USER, "G1002")
DUPLICATE_USER = "doppio"  # two entries carry this uid

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
database mdb
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw admin-pw
directory {root}/db
overlay ppolicy
{tls}access to attrs=userPassword
  by dn.exact="{service}" write
  by self write
  by anonymous auth
  by * none
access to * by * read
"""


def _ldif() -> str:
    blocks = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
        "dc: scuola\no: Scuola di prova",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services",
        f"dn: ou=policies,{SUFFIX}\nobjectClass: organizationalUnit\nou: policies",
        f"dn: ou=altri,{SUFFIX}\nobjectClass: organizationalUnit\nou: altri",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: credmail\nuserPassword: {SERVICE_PASSWORD}",
        f"dn: cn=severa,ou=policies,{SUFFIX}\nobjectClass: pwdPolicy\nobjectClass: device\n"
        "cn: severa\npwdAttribute: userPassword\npwdMinLength: 30\npwdCheckQuality: 2",
    ]
    for uid, (first, last, password) in USERS.items():
        block = (
            f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {first} {last}\ngivenName: {first}\nsn: {last}\nuserPassword: {password}"
        )
        if uid in STRICT_USERS:
            block += f"\npwdPolicySubentry: cn=severa,ou=policies,{SUFFIX}"
        blocks.append(block)
    blocks.append(
        f"dn: uid={DUPLICATE_USER},ou=altri,{SUFFIX}\nobjectClass: inetOrgPerson\n"
        f"uid: {DUPLICATE_USER}\ncn: Altro Doppio\nsn: Doppio\nuserPassword: altro"
    )
    return "\n\n".join(blocks) + "\n"


def _binary(name: str) -> str:
    found = shutil.which(name) or f"/usr/sbin/{name}"
    if not Path(found).exists():
        pytest.fail(f"{name} is missing: install Debian's slapd and ldap-utils (scripts/test)")
    return found


@dataclass
class Slapd:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="credmail-slapd-")))
    port: int = 0
    tls: bool = False  # also listen for LDAPS (and offer StartTLS) with a test certificate
    tls_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "cert.pem"

    def start(self) -> Slapd:
        """Write the config and tree once, then run slapd in the foreground."""
        conf = self.root / "slapd.conf"
        if not conf.exists():
            (self.root / "db").mkdir()
            tls = ""
            if self.tls:
                make_certificate(self.root)  # self-signed for 127.0.0.1: also the CA file
                tls = (
                    f"TLSCertificateFile {self.ca_file}\n"
                    f"TLSCertificateKeyFile {self.root}/key.pem\n"
                )
            conf.write_text(
                SLAPD_CONF.format(root=self.root, suffix=SUFFIX, service=SERVICE_DN, tls=tls)
            )
            (self.root / "tree.ldif").write_text(_ldif())
            subprocess.run(
                [_binary("slapadd"), "-f", str(conf), "-l", str(self.root / "tree.ldif")],
                check=True,
                capture_output=True,
            )
        self.port = self.port or free_port()
        listen = f"{self.url}/"
        if self.tls:
            self.tls_port = self.tls_port or free_port()
            listen += f" {self.ldaps_url}/"
        with (self.root / "slapd.log").open("ab") as log_file:  # the child keeps its copy
            self.process = subprocess.Popen(
                [_binary("slapd"), "-f", str(conf), "-h", listen, "-d", "0"],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "slapd.log").read_text(errors="replace")
                raise RuntimeError(f"slapd exited with {self.process.returncode}: {log[-2000:]}")
            try:
                for port in (self.port, self.tls_port) if self.tls else (self.port,):
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("slapd did not listen within 15 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def can_bind(self, username: str, password: str) -> bool:
        """A user's own simple bind, as the register would do it."""
        conn = Connection(
            Server(self.url, connect_timeout=5),
            user=f"uid={username},{PEOPLE}",
            password=password,
            raise_exceptions=False,
        )
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()


@pytest.fixture
def slapd() -> Iterator[Slapd]:
    """A fresh directory for each test: passwords change, so no test sees another's."""
    server = Slapd().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def slapd_tls() -> Iterator[Slapd]:
    """The same directory, also on LDAPS and with StartTLS, its certificate in `ca_file`."""
    server = Slapd(tls=True).start()
    try:
        yield server
    finally:
        server.cleanup()
