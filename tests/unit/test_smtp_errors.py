"""How SMTP failures are sorted: temporary, permanent, or our own settings (pause)."""

from __future__ import annotations

import aiosmtplib
import pytest

from credmail.adapters.smtp import _classify
from credmail.service.outbox.delivery import describe, redact


@pytest.mark.parametrize(
    "exc",
    [
        aiosmtplib.SMTPException("The SMTP AUTH extension is not supported by this server."),
        aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."),
        aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Authentication credentials invalid"),
        aiosmtplib.SMTPResponseException(530, "5.7.0 Authentication required"),
    ],
)
def test_configuration_problems_are_not_retried_per_mail(exc: Exception) -> None:
    assert _classify(exc).config


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (aiosmtplib.SMTPResponseException(451, "4.3.0 try later"), False),
        (aiosmtplib.SMTPResponseException(550, "5.1.1 no such user"), True),
        (aiosmtplib.SMTPServerDisconnected("gone"), False),
    ],
)
def test_delivery_failures_are_not_configuration_problems(exc: Exception, permanent: bool) -> None:
    error = _classify(exc)
    assert (error.config, error.permanent) == (False, permanent)


def test_errors_lose_every_address() -> None:
    text = "550 5.1.1 <Mario.Rossi@example.org>: user unknown; also a.b+c@x.example, ok"
    assert redact(text) == "550 5.1.1 <address>: user unknown; also <address>, ok"
    error = _classify(aiosmtplib.SMTPRecipientRefused(550, "no <m@example.org>", "m@example.org"))
    try:
        raise error from aiosmtplib.SMTPRecipientRefused(550, "x", "m@example.org")
    except Exception as exc:
        error_class, message = describe(exc)
    assert error_class == "SMTPRecipientRefused" and "@" not in message
