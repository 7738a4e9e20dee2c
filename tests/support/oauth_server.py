"""A small, real OAuth2 authorization server on loopback, for the tests.

One state, two listeners: plain HTTP (Dovecot's introspection, google-auth, the generic
flow) and HTTPS with a self-signed certificate (msal insists on an https authority).
Grants: client_credentials, refresh_token (rotating; the old token stays valid until its
successor is first used, as the big providers do), device_code, and Google's JWT bearer
grant (a service-account assertion verified with the key registered by the test).
Switches make it answer invalid_grant / invalid_client or respond slowly; every token
request is counted.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

import jwt
from aiosmtpd.smtp import AuthResult

from tests.support.servers import RecordingHandler

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"  # google-auth's, whatever token_uri is


@dataclass
class OAuthServer:
    """Issues access tokens living `lifetime` seconds for `mailbox` (the IMAP user)."""

    mailbox: str = "segreteria"
    lifetime: float = 3600
    clients: dict[str, str] = field(default_factory=lambda: {"credmail-app": "app-secret"})
    service_accounts: dict[str, str] = field(default_factory=dict)  # email -> public PEM
    client_keys: dict[str, str] = field(default_factory=dict)  # client id -> public PEM
    fail_with: str | None = None
    error_description: str = ""
    delay: float = 0.0
    device_approved: bool = True
    certificate: Path | None = None
    strict_rotation: bool = False  # the old refresh token dies the moment a new one is issued
    on_introspect: Callable[[], None] | None = None  # called after answering an introspection
    token_requests: list[tuple[float, str]] = field(default_factory=list)
    access: dict[str, tuple[str, float]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> OAuthServer:
        self._servers.append(self._listen(None))
        if self.certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificate, self.certificate.with_name("key.pem"))
            self._servers.append(self._listen(context))
        return self

    def _listen(self, context: ssl.SSLContext | None) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self._servers[1].server_address[1]}"

    # -- helpers for tests ------------------------------------------------------------

    def grant_refresh_token(self, username: str | None = None, client_id: str = "") -> str:
        token = "rt-" + secrets.token_urlsafe(16)
        with self.lock:
            self.refresh[token] = {"user": username or self.mailbox, "client": client_id}
        return token

    def valid(self, token: str) -> str | None:
        """The user a live access token belongs to, or None."""
        with self.lock:
            user, expires = self.access.get(token, ("", 0.0))
        return user if user and time.time() < expires else None

    def requests_since(self, since: float) -> int:
        return sum(1 for at, _grant in self.token_requests if at >= since)

    # -- endpoints ------------------------------------------------------------------

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        with self.lock:
            self.token_requests.append((time.time(), grant))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with:
            return 400, {"error": self.fail_with, "error_description": self.error_description}
        handler = {
            "client_credentials": self._client_credentials,
            "refresh_token": self._refresh_token,
            DEVICE_GRANT: self._device_code,
            JWT_GRANT: self._jwt_bearer,
        }.get(grant)
        if handler is None:
            return 400, {"error": "unsupported_grant_type"}
        return handler(form)

    def _client_ok(self, form: dict[str, str], secret_required: bool) -> bool:
        client = form.get("client_id", "")
        if "client_assertion" in form:  # a certificate-signed JWT (msal with certificate_file)
            return self._assertion_ok(client, form["client_assertion"])
        if client not in self.clients:
            return False
        return not secret_required or form.get("client_secret") == self.clients[client]

    def _assertion_ok(self, client: str, assertion: str) -> bool:
        key = self.client_keys.get(client)
        if key is None:
            return False
        try:
            claims = jwt.decode(
                assertion, key, algorithms=["RS256", "PS256"], options={"verify_aud": False}
            )
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == claims.get("sub") == client)

    def _issue(self, user: str, refresh: str | None = None) -> tuple[int, dict[str, Any]]:
        token = "at-" + secrets.token_urlsafe(24)
        with self.lock:
            self.access[token] = (user, time.time() + self.lifetime)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.lifetime) if self.lifetime >= 1 else 1,
        }
        if refresh:
            body["refresh_token"] = refresh
        return 200, body

    def _client_credentials(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not self._client_ok(form, secret_required=True):
            return 401, {"error": "invalid_client", "error_description": "bad client"}
        return self._issue(self.mailbox)

    def _refresh_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        old = form.get("refresh_token", "")
        with self.lock:
            entry = self.refresh.get(old)
            if entry is None:
                return 400, {"error": "invalid_grant", "error_description": "unknown token"}
            parent = entry.get("parent")
            if parent is not None:  # the successor is in use: its parent is spent
                self.refresh.pop(parent, None)
                entry.pop("parent")
            new = "rt-" + secrets.token_urlsafe(16)
            self.refresh[new] = {"user": entry["user"], "client": entry["client"], "parent": old}
            if self.strict_rotation:
                del self.refresh[old]
        return self._issue(entry["user"], refresh=new)

    def _device_code(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        device = self.devices.get(form.get("device_code", ""))
        if device is None:
            return 400, {"error": "expired_token"}
        if not self.device_approved:
            return 400, {"error": "authorization_pending"}
        return self._issue(self.mailbox, refresh=self.grant_refresh_token())

    def _jwt_bearer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        assertion = form.get("assertion", "")
        issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss", "")
        key = self.service_accounts.get(issuer)
        if key is None:
            return 401, {"error": "invalid_client", "error_description": "unknown account"}
        try:
            claims = jwt.decode(assertion, key, algorithms=["RS256"], audience=GOOGLE_AUDIENCE)
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": f"bad assertion: {exc}"}
        if "https://mail.google.com/" not in str(claims.get("scope", "")).split():
            return 400, {"error": "invalid_scope"}
        return self._issue(str(claims.get("sub", "")))

    def device_authorization(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") not in self.clients:
            return 401, {"error": "invalid_client"}
        code = secrets.token_urlsafe(16)
        self.devices[code] = {"user_code": "ABCD-EFGH"}
        return 200, {
            "device_code": code,
            "user_code": "ABCD-EFGH",
            "verification_uri": self.url + "/device",
            "expires_in": 600,
            "interval": 1,
        }

    def introspect(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        user = self.valid(form.get("token", ""))
        return 200, {"active": True, "username": user} if user else {"active": False}

    def discovery(self, base: str, path: str) -> tuple[int, dict[str, Any]]:
        issuer = base + path.split("/v2.0/.well-known")[0].split("/.well-known")[0]
        return 200, {
            "issuer": issuer,
            "token_endpoint": base + "/token",
            "authorization_endpoint": base + "/authorize",
            "device_authorization_endpoint": base + "/devicecode",
        }


def _handler(state: OAuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _base(self) -> str:
            scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
            return f"{scheme}://127.0.0.1:{cast(tuple[str, int], self.server.server_address)[1]}"

        def do_GET(self) -> None:
            if ".well-known/openid-configuration" in self.path:
                self._reply(*state.discovery(self._base(), self.path))
            else:
                self._reply(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            form = {key: values[0] for key, values in parse_qs(raw).items()}
            _basic_auth(self.headers.get("Authorization", ""), form)
            path = self.path.split("?")[0]
            if path.endswith("/token"):
                self._reply(*state.token(form))
            elif path.endswith("/devicecode"):
                self._reply(*state.device_authorization(form))
            elif path.endswith("/introspect"):
                self._reply(*state.introspect(form))
                if state.on_introspect is not None:
                    state.on_introspect()
            else:
                self._reply(404, {"error": "not_found"})

    return Handler


def _basic_auth(header: str, form: dict[str, str]) -> None:
    if header.startswith("Basic "):
        client, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        form.setdefault("client_id", client)
        form.setdefault("client_secret", secret)


class OAuthSmtpHandler(RecordingHandler):
    """aiosmtpd handler that also accepts AUTH XOAUTH2, validated by the OAuth server."""

    def __init__(self, oauth: OAuthServer) -> None:
        super().__init__()
        self.oauth = oauth
        self.logins: list[str] = []

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        if len(args) > 1:
            response = args[1].encode()
        else:
            response = await server.challenge_auth("", encode_to_b64=False)
            response = base64.b64encode(response) if isinstance(response, bytes) else b""
        fields = dict(
            part.split("=", 1)
            for part in base64.b64decode(response).decode().split("\x01")
            if "=" in part
        )
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        if user and self.oauth.valid(token) == user:
            self.logins.append(user)
            return AuthResult(success=True, handled=False, auth_data=user)
        return AuthResult(success=False, handled=False)


def service_account_file(directory: Path, oauth: OAuthServer, email: str) -> Path:
    """A Google service-account key JSON (key generated here) whose token_uri is `oauth`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    oauth.service_accounts[email] = public
    path = directory / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "credmail-test",
                "private_key_id": "key-1",
                "private_key": private,
                "client_email": email,
                "client_id": "1234567890",
                "token_uri": oauth.url + "/token",
            }
        )
    )
    return path


def oauth_env(oauth: OAuthServer, flow: str, directory: Path, **extra: str) -> dict[str, str]:
    """CREDMAIL_* settings signing IMAP and SMTP in through `oauth` with `flow`."""
    env = {
        "CREDMAIL_MAILBOX__AUTH": "oauth2",
        "CREDMAIL_SMTP__AUTH": "oauth2",
        "CREDMAIL_OAUTH__TIMEOUT_SECONDS": "5",
    }
    if flow == "microsoft":
        assert oauth.certificate is not None
        env |= {
            "CREDMAIL_OAUTH__PROVIDER": "microsoft",
            "CREDMAIL_OAUTH__FLOW": "client_credentials",
            "CREDMAIL_OAUTH__AUTHORITY_HOST": oauth.https_url,
            "CREDMAIL_OAUTH__TENANT_ID": "school-tenant",
            "CREDMAIL_OAUTH__CLIENT_ID": "credmail-app",
            "CREDMAIL_OAUTH__CLIENT_SECRET": "app-secret",
            "CREDMAIL_OAUTH__CA_FILE": str(oauth.certificate),
        }
    elif flow == "google":
        path = service_account_file(directory, oauth, "credmail@school.iam.gserviceaccount.com")
        env |= {
            "CREDMAIL_OAUTH__PROVIDER": "google",
            "CREDMAIL_OAUTH__FLOW": "service_account",
            "CREDMAIL_OAUTH__SERVICE_ACCOUNT_FILE": str(path),
            "CREDMAIL_OAUTH__SUBJECT": oauth.mailbox,
        }
    else:
        env |= {
            "CREDMAIL_OAUTH__PROVIDER": "generic",
            "CREDMAIL_OAUTH__FLOW": "refresh_token",
            "CREDMAIL_OAUTH__CLIENT_ID": "credmail-app",
            "CREDMAIL_OAUTH__TOKEN_URL": oauth.url + "/token",
            "CREDMAIL_OAUTH__DEVICE_AUTHORIZATION_URL": oauth.url + "/devicecode",
            "CREDMAIL_OAUTH__SCOPES": '["imap", "smtp"]',
            "CREDMAIL_OAUTH__TOKEN_KEY_FILE": str(directory / "token.key"),
        }
    env.update({f"CREDMAIL_{key.upper()}": value for key, value in extra.items()})
    return env


def client_certificate(directory: Path, oauth: OAuthServer, client_id: str) -> tuple[Path, str]:
    """A key and self-signed certificate in one PEM for `client_id`; returns (path, SHA-1
    thumbprint), and registers the public key with the server."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credmail")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = directory / "app.pem"
    path.write_bytes(private + cert.public_bytes(serialization.Encoding.PEM))
    oauth.client_keys[client_id] = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return path, cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
