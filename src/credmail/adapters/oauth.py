"""OAuth2 access tokens for IMAP and SMTP: msal (Microsoft app-only), google-auth (service
account with domain-wide delegation), and plain HTTP for the refresh-token and device-code
flows. `TokenSource` caches the token, tells permanent sign-in failures from passing ones,
records the outcome for `credmail status`, and asks again at most every `retry_minutes`.

No token or secret ever goes into a log line or an exception's text.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, TextIO

import structlog

from credmail.adapters.db.oauth_store import OAuthStore, TokenKeyError
from credmail.config import OAuthSettings
from credmail.service.desks.status import SIGN_IN_NEEDS_REAUTH, SIGN_IN_OK
from credmail.service.source_errors import SignInError as SignInError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOGIN_COMMAND = "credmail oauth login"


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # epoch seconds
    lifetime: float

    def fresh_for(self, now: float) -> float:
        """Seconds left before it is due for renewal (a fifth of its life, at most 5 min)."""
        return self.expires_at - min(300.0, self.lifetime / 5) - now


# Most specific first: a Microsoft AADSTS code says more than the OAuth2 error name.
PERMANENT: list[tuple[str, str, str]] = [
    (
        "AADSTS7000222",
        "the client secret has expired",
        "create a new client secret in the app registration and update oauth.client_secret_file",
    ),
    (
        "AADSTS50173",
        "the refresh token was revoked (password changed or sessions revoked)",
        f"sign in again with `{LOGIN_COMMAND}`",
    ),
    (
        "AADSTS700082",
        "the refresh token expired after 90 days without use",
        f"sign in again with `{LOGIN_COMMAND}`",
    ),
    (
        "unauthorized_client",
        "the client is not allowed this grant (Google: domain-wide delegation for "
        "https://mail.google.com/ is missing)",
        "grant the delegation in the Admin console (Security > API controls) or fix "
        "the app registration",
    ),
    (
        "invalid_client",
        "the identity provider refused the client id or its secret/certificate",
        "check oauth.client_id and the client secret or certificate",
    ),
    (
        "invalid_grant",
        "the grant was refused (refresh token revoked or expired, or the service "
        "account's subject is not allowed)",
        f"sign in again with `{LOGIN_COMMAND}` (service account: check oauth.subject and the key)",
    ),
    (
        "no_refresh_token",
        "no refresh token is stored yet",
        f"sign in once with `{LOGIN_COMMAND}`",
    ),
    (
        "mailbox_refused",
        "the mail server refused a fresh access token (mailbox permission missing or "
        "IMAP/SMTP AUTH disabled for the mailbox)",
        "grant the app access to the mailbox (Exchange: Add-MailboxPermission; "
        "Set-CASMailbox -SmtpClientAuthenticationDisabled $false)",
    ),
]


def sign_in_error(error: str, detail: str = "", codes: list[Any] | None = None) -> SignInError:
    """Classify an error answer from a token endpoint (the text is not echoed back)."""
    seen = f"{error} {detail} " + " ".join(f"AADSTS{code}" for code in codes or [])
    for code, cause, fix in PERMANENT:
        if code in seen:
            return SignInError(code, cause, fix, permanent=True)
    name = error if error.replace("_", "").isalnum() and len(error) < 50 else "error"
    return SignInError(name, "the identity provider did not issue a token", "", False)


def unreachable(exc: BaseException) -> SignInError:
    return SignInError(
        "unreachable", f"token endpoint not reachable ({type(exc).__name__})", "", False
    )


Fetch = Callable[[], AccessToken]


class TokenSource:
    """Thread-safe cache in front of a fetch; one token request per retry period after a
    permanent failure, one log line when the sign-in state changes."""

    def __init__(
        self,
        fetch: Fetch,
        store: OAuthStore | None = None,
        retry_seconds: float = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fetch, self.store, self.retry_seconds, self.clock = fetch, store, retry_seconds, clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._failure: SignInError | None = None
        self._retry_at = 0.0
        self.log = structlog.get_logger("credmail.oauth")

    @property
    def failure(self) -> SignInError | None:
        return self._failure

    def token(self, fresh: bool = False) -> AccessToken:
        with self._lock:
            now = self.clock()
            if self._failure is not None and now < self._retry_at:
                raise self._failure
            if not fresh and self._token is not None and self._token.fresh_for(now) > 0:
                return self._token
            try:
                self._token = self.fetch()
            except SignInError as exc:
                self._failed(exc, now)
                raise
            self._succeeded()
            return self._token

    async def access_token(self) -> str:
        """For aiosmtplib's `oauth_token_generator` (runs the blocking fetch in a thread)."""
        import asyncio

        return (await asyncio.to_thread(self.token)).value

    def reject(self, token: AccessToken) -> None:
        """The server refused `token`: forget it so the next call fetches another."""
        with self._lock:
            if self._token is token:
                self._token = None

    def reject_current(self) -> None:
        with self._lock:
            self._token = None

    def refused_fresh(self) -> SignInError:
        """The mail server refused a token just issued: a permanent cause."""
        exc = sign_in_error("mailbox_refused")
        with self._lock:
            self._failed(exc, self.clock())
        return exc

    def _failed(self, exc: SignInError, now: float) -> None:
        if not exc.permanent:
            self.log.warning("oauth.token_failed", cause=exc.cause, code=exc.code)
            return
        changed = self._failure is None or self._failure.code != exc.code
        self._failure, self._retry_at, self._token = exc, now + self.retry_seconds, None
        if changed:
            self.log.error(
                "oauth.needs_reauthorisation",
                code=exc.code,
                cause=exc.cause,
                fix=exc.fix,
                retry_in_seconds=self.retry_seconds,
            )
            if self.store is not None:
                self.store.record(SIGN_IN_NEEDS_REAUTH, exc.cause, exc.fix)

    def _succeeded(self) -> None:
        if self._failure is not None:
            self.log.info("oauth.signed_in_again")
            self._failure = None
        if self.store is not None:
            state = self.store.state()
            if state is None or state.status != SIGN_IN_OK:
                self.store.record(SIGN_IN_OK)


# -- flows ----------------------------------------------------------------------------


def _from_answer(body: dict[str, Any], now: float) -> AccessToken:
    lifetime = float(body.get("expires_in") or 3600)
    return AccessToken(str(body["access_token"]), now + lifetime, lifetime)


def msal_client_credentials(oauth: OAuthSettings) -> Fetch:
    """Microsoft app-only (client credentials) through msal; the app is built on first use
    (msal reads the tenant's OpenID configuration when constructed)."""
    import msal

    apps: list[Any] = []

    def fetch() -> AccessToken:
        now = time.time()
        try:
            if not apps:
                apps.append(
                    msal.ConfidentialClientApplication(
                        oauth.client_id,
                        client_credential=_msal_credential(oauth),
                        authority=f"{oauth.authority_host.rstrip('/')}/{oauth.tenant_id}",
                        instance_discovery=False,
                        http_client=_requests_session(oauth),
                    )
                )
            result = apps[0].acquire_token_for_client(scopes=list(oauth.effective_scopes))
        except ValueError as exc:  # msal: authority discovery failed
            raise sign_in_error("invalid_request") from exc.__cause__
        except OSError as exc:  # requests' errors are OSErrors
            raise unreachable(exc) from None
        if "access_token" not in result:
            raise sign_in_error(
                str(result.get("error", "")),
                str(result.get("error_description", "")),
                list(result.get("error_codes") or []),
            )
        return _from_answer(result, now)

    return fetch


def _requests_session(oauth: OAuthSettings) -> Any:
    """A requests session that honours oauth.ca_file and the timeout on every call
    (requests lets REQUESTS_CA_BUNDLE override a session-wide `verify`)."""
    import requests

    session = requests.Session()
    verify: Any = str(oauth.ca_file) if oauth.ca_file else True
    session.request = functools.partial(  # type: ignore[method-assign]
        session.request, timeout=oauth.timeout_seconds, verify=verify
    )
    return session


def _msal_credential(oauth: OAuthSettings) -> Any:
    if oauth.certificate_file is not None:
        return {
            "private_key": oauth.certificate_file.read_text(),
            "thumbprint": oauth.certificate_thumbprint,
        }
    return oauth.client_secret


def google_service_account(oauth: OAuthSettings) -> Fetch:
    """Google service account with domain-wide delegation, acting as `oauth.subject`."""
    from google.auth import exceptions
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    def fetch() -> AccessToken:
        now = time.time()
        try:
            credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                str(oauth.service_account_file),
                scopes=list(oauth.effective_scopes),
                subject=oauth.subject,
            )
            credentials.refresh(Request())
        except exceptions.RefreshError as exc:
            data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
            raise sign_in_error(str(data.get("error", "")), "") from None
        except (exceptions.TransportError, OSError) as exc:
            raise unreachable(exc) from None
        except ValueError:
            raise SignInError(
                "bad_key_file",
                "oauth.service_account_file is not a service-account key",
                "download the key JSON again",
                permanent=True,
            ) from None
        expiry = credentials.expiry.replace(tzinfo=UTC).timestamp()
        return AccessToken(credentials.token, expiry, max(1.0, expiry - now))

    return fetch


def post_form(oauth: OAuthSettings, url: str, form: dict[str, str]) -> dict[str, Any]:
    """POST to a token or device endpoint; the JSON answer (error answers included)."""
    form = {**form, "client_id": oauth.client_id}
    if oauth.client_secret:
        form["client_secret"] = oauth.client_secret
    verify: Any = str(oauth.ca_file) if oauth.ca_file else True
    import requests  # here: every credmail process imports this module, few sign in

    try:
        response = requests.post(
            url, data=form, timeout=oauth.timeout_seconds, verify=verify, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise unreachable(exc) from None
    if response.status_code >= 500:
        raise SignInError("server_error", f"HTTP {response.status_code}", "", False)
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class HttpOAuth:
    """The plain-HTTP grants (refresh token, device code) against `oauth`'s endpoints."""

    def __init__(self, oauth: OAuthSettings, store: OAuthStore) -> None:
        self.oauth, self.store = oauth, store

    def _post(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        return post_form(self.oauth, url, form)

    def refresh(self) -> AccessToken:
        """One refresh; a rotated refresh token is committed before it is used."""
        try:
            old = self.store.refresh_token()
        except TokenKeyError as exc:
            raise SignInError(
                "token_key", str(exc), f"sign in again with `{LOGIN_COMMAND}`", permanent=True
            ) from None
        if old is None:
            raise sign_in_error("no_refresh_token")
        now = time.time()
        body = self._post(
            self.oauth.effective_token_url,
            {
                "grant_type": "refresh_token",
                "refresh_token": old,
                "scope": " ".join(self.oauth.effective_scopes),
            },
        )
        if "access_token" not in body:
            raise sign_in_error(
                str(body.get("error", "")),
                str(body.get("error_description", "")),
                list(body.get("error_codes") or []),
            )
        new = body.get("refresh_token")
        if isinstance(new, str) and new and new != old:
            self.store.save_refresh_token(new)
        return _from_answer(body, now)

    def device_login(
        self, out: TextIO, sleep: Callable[[float], None] = time.sleep, timeout: float = 900
    ) -> None:
        """RFC 8628: print where to sign in, wait for the person, store the refresh token."""
        scopes = " ".join(self.oauth.effective_scopes)
        grant = self._post(self.oauth.effective_device_url, {"scope": scopes})
        if "device_code" not in grant:
            raise sign_in_error(str(grant.get("error", "")))
        uri = grant.get("verification_uri_complete") or grant.get("verification_uri")
        print(f"Open {uri} and enter the code {grant['user_code']}", file=out, flush=True)
        interval = float(grant.get("interval") or 5)
        deadline = time.monotonic() + min(timeout, float(grant.get("expires_in") or timeout))
        while time.monotonic() < deadline:
            sleep(interval)
            body = self._post(
                self.oauth.effective_token_url,
                {"grant_type": DEVICE_GRANT, "device_code": str(grant["device_code"])},
            )
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            if "refresh_token" not in body:
                raise sign_in_error(str(error or "no_refresh_token"))
            self.store.save_refresh_token(str(body["refresh_token"]))
            self.store.record(SIGN_IN_OK)
            return
        raise SignInError("expired_token", "nobody completed the sign-in in time", "", False)


def token_source(oauth: OAuthSettings, store: OAuthStore) -> TokenSource:
    """The TokenSource for the configured provider and flow."""
    if oauth.flow == "service_account":
        fetch = google_service_account(oauth)
    elif oauth.flow == "refresh_token":
        fetch = HttpOAuth(oauth, store).refresh
    elif oauth.provider == "microsoft":
        fetch = msal_client_credentials(oauth)
    else:
        fetch = generic_client_credentials(oauth)
    return TokenSource(fetch, store, oauth.retry_minutes * 60)


def generic_client_credentials(oauth: OAuthSettings) -> Fetch:
    """Client credentials at a generic token endpoint (RFC 6749 §4.4)."""

    def fetch() -> AccessToken:
        now = time.time()
        body = post_form(
            oauth,
            oauth.effective_token_url,
            {"grant_type": "client_credentials", "scope": " ".join(oauth.effective_scopes)},
        )
        if "access_token" not in body:
            raise sign_in_error(str(body.get("error", "")), str(body.get("error_description", "")))
        return _from_answer(body, now)

    return fetch
