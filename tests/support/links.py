"""Reset links for tests: issue and mint a real token for someone on file."""

from __future__ import annotations

from datetime import UTC, datetime

from credmail.bootstrap import App
from credmail.core.recipients import link_kind, recipients
from credmail.service.links import TokenLinkIssuer
from credmail.service.ports import ORIGIN_REQUEST


def issue_token(
    app: App,
    username: str,
    now: datetime | None = None,
    *,
    purpose: str | None = None,
    origin: str = ORIGIN_REQUEST,
) -> str:
    """A minted `selector.verifier` for `username`, sent (as the daemon would) to the first
    address on file that may receive it; revokes the account's older links. `purpose` and
    `origin` default to a request's."""
    now = now or app.clock()
    links = app.settings.links
    issuer = TokenLinkIssuer(links.base_url, links.ttl_minutes)
    with app.uow() as uow:
        person = uow.directory.get(username)
        assert person is not None, f"{username} is not on file"
        today = now.astimezone(UTC).date()
        guardians = uow.directory.guardians_of(username) if person.is_minor_on(today) else []
        address = recipients(person, guardians, today)[0]
        kind = purpose or link_kind(person, today)[0]
        issued = issuer.issue(uow, person, kind, address, now, origin=origin)
        assert issued.selector is not None
        minted = issuer.mint(uow, issued.selector, now)
        assert minted is not None
        uow.commit()
    return minted.url.rsplit("/reset/", 1)[1]
