"""The pure abuse limits: acknowledgements apart from the breaker, calm repeat replies."""

from __future__ import annotations

from datetime import UTC, datetime

from credmail.core.limits import Limits, Usage, apply_limits
from credmail.core.values import Decision, HoldForReview, Outcome, SendLink, SendReply

TEACHER = "t.bianchi@example.org"
STRANGER = "nuovo@example.net"
LINK = SendLink("T1", "adult", TEACHER, "link_adult")
ANSWER = Decision(Outcome.ANSWERED, (), (LINK,))
ACK = SendReply("acknowledge_unknown", STRANGER)
UNKNOWN = Decision(Outcome.REVIEW, ("unknown_sender",), (HoldForReview(("unknown_sender",)), ACK))
KEYS = {TEACHER: TEACHER, STRANGER: STRANGER}
AT_10_02 = datetime(2026, 11, 28, 10, 2, tzinfo=UTC)


def test_acknowledgements_never_trip_the_breaker() -> None:
    usage = Usage(global_replies_1h=0, acknowledgements_1h=5)
    limited = apply_limits(UNKNOWN, usage, Limits(global_replies_per_hour=1), KEYS)
    assert not limited.trip_breaker
    assert limited.decision == UNKNOWN


def test_acknowledgements_have_their_own_cap() -> None:
    usage = Usage(acknowledgements_1h=20)
    limited = apply_limits(UNKNOWN, usage, Limits(acknowledgements_per_hour=20), KEYS)
    reasons = ("unknown_sender", "acknowledgement_limited")
    assert limited.decision == Decision(Outcome.REVIEW, reasons, (HoldForReview(reasons),))
    assert not limited.trip_breaker


def test_acknowledgements_do_not_count_toward_genuine_answers() -> None:
    """The caller counts the breaker without acknowledgements; a genuine link still goes."""
    usage = Usage(global_replies_1h=2, acknowledgements_1h=19)
    limited = apply_limits(ANSWER, usage, Limits(global_replies_per_hour=3), KEYS)
    assert limited.decision == ANSWER and not limited.trip_breaker


def test_no_acknowledgement_while_the_breaker_is_tripped() -> None:
    limited = apply_limits(UNKNOWN, Usage(breaker_tripped=True), Limits(), KEYS)
    assert ACK not in limited.decision.actions


def repeat_usage(**extra: object) -> Usage:
    values: dict[str, object] = {
        "account_links_15m": {"T1/adult": 1},
        "address_links_24h": {TEACHER: 1},
        "address_replies_24h": {TEACHER: 1},
        "last_link_at": {"T1/adult": AT_10_02},
    }
    values.update(extra)
    return Usage(**values)  # type: ignore[arg-type]


def test_a_repeat_inside_the_window_gets_one_calm_reply() -> None:
    limited = apply_limits(ANSWER, repeat_usage(), Limits(), KEYS)
    notice = SendReply("link_already_sent", TEACHER, context=(("sent_at", "10:02"),), about="T1")
    assert limited.decision == Decision(Outcome.ANSWERED, ("repeat_request",), (notice,))


def test_a_guardians_repeat_is_not_addressed_by_the_students_name() -> None:
    link = SendLink("S1", "student_reset", TEACHER, "link_student")
    usage = repeat_usage(
        account_links_15m={"S1/student_reset": 1}, last_link_at={"S1/student_reset": AT_10_02}
    )
    limited = apply_limits(Decision(Outcome.ANSWERED, (), (link,)), usage, Limits(), KEYS)
    (notice,) = limited.decision.actions
    assert isinstance(notice, SendReply) and notice.about is None


def test_a_second_repeat_gets_nothing_and_no_review() -> None:
    usage = repeat_usage(repeat_notice_sent={TEACHER: True})
    limited = apply_limits(ANSWER, usage, Limits(), KEYS)
    assert limited.decision == Decision(Outcome.ANSWERED, ("repeat_request",), ())


def test_a_repeat_over_the_daily_replies_is_still_rate_limited() -> None:
    usage = repeat_usage(address_replies_24h={TEACHER: 5})
    limited = apply_limits(ANSWER, usage, Limits(), KEYS)
    assert limited.decision.reasons == ("rate_limited",)
    assert limited.decision.outcome is Outcome.REVIEW
