"""Anti-scalping rules: per-person booking limits and the no-show ban.

Read from mappings/booking_rules.toml; pure functions of their arguments.
"""

from __future__ import annotations

import datetime as dt
import logging
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from adapter.refusals import Refusal

logger = logging.getLogger(__name__)

BOOKING_STATUSES = ("active", "cancelled", "no_show", "visited")

# How bookings made through another account's unverified dependant link count (docs/identity.md).
COUNT_PER_ACCOUNT = "count_per_account"  # only for the account that made them
COUNT_UNVERIFIED_TOGETHER = "count_unverified_together"  # for every unverified link, not verified
COUNT_SHARED = "count_shared"  # for everyone, verified or not (the rule before verification)
UNVERIFIED_DEPENDANT_RULES = (COUNT_PER_ACCOUNT, COUNT_UNVERIFIED_TOGETHER, COUNT_SHARED)


class BookingRulesError(ValueError):
    """mappings/booking_rules.toml has a key or a value the adapter cannot use."""


@dataclass(frozen=True)
class BookingRules:
    """Per-patient booking limits and the no-show ban (mappings/booking_rules.toml)."""

    per_id_per_day: int = 2
    per_department_per_day: int = 1
    per_doctor_per_day: int = 1
    no_show_limit: int = 3
    no_show_window_days: int = 90
    ban_days: int = 90
    # Dependant links (docs/identity.md): how another account's unverified link's bookings and
    # no-shows count, and whether a HIS match must also carry the account holder's phone.
    unverified_dependants: str = COUNT_PER_ACCOUNT
    his_match_needs_phone: bool = True
    # Held but not yet paid, across all the account's patients: a bot holding many places to
    # resell them must pay for each, or let it go, before holding the next.
    unpaid_holds_per_account: int = 2


def load_booking_rules(path: Path) -> BookingRules:
    """Read and validate the booking rules; a missing key keeps its default."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BookingRulesError(f"{path.name}: not valid TOML: {exc}") from None
    known = [f.name for f in fields(BookingRules)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise BookingRulesError(f"{path.name}: unknown key(s) {', '.join(unknown)}; "
                                f"known keys: {', '.join(known)}")
    for key, value in data.items():
        if key == "unverified_dependants":
            if value not in UNVERIFIED_DEPENDANT_RULES:
                raise BookingRulesError(f"{path.name}: {key} must be one of "
                                        f"{', '.join(UNVERIFIED_DEPENDANT_RULES)}, not {value!r}")
        elif key == "his_match_needs_phone":
            if not isinstance(value, bool):
                raise BookingRulesError(f"{path.name}: {key} must be true or false, "
                                        f"not {value!r}")
        # bool is an int in Python; "true" is not a limit.
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BookingRulesError(f"{path.name}: {key} must be a whole number of 1 or more, "
                                    f"not {value!r}")
    rules = BookingRules(**data)
    if rules.per_department_per_day > rules.per_id_per_day:
        logger.warning("booking rules: per_department_per_day is above per_id_per_day "
                       "and has no effect")
    return rules


@dataclass(frozen=True)
class BookingFact:
    """One of the patient's bookings, as the limits see it."""

    visit_date: dt.date
    department_code: str
    doctor_code: str
    status: str  # "active" (booked, paid or confirmed), "cancelled", "no_show", "visited"
    account_id: int = 0  # the wallet account that booked it
    verified: bool = True  # made through a verified link (adapter.models.Verification)


def counted_bookings(rules: BookingRules, bookings: list[BookingFact], *, account_id: int,
                     verified: bool) -> list[BookingFact]:
    """The person's bookings that count toward ``account_id``'s limits and no-show ban.

    ``verified`` says whether the account's own link to the person is verified. Bookings made
    through verified links count for every account, and an account's own bookings for itself;
    bookings through another account's unverified link count as ``unverified_dependants``
    says: only for that account (a stranger who added a child cannot use up the child's limits
    or get them banned), for every unverified link too, or for everyone.
    """
    rule = rules.unverified_dependants
    if rule == COUNT_SHARED:
        return list(bookings)
    together = rule == COUNT_UNVERIFIED_TOGETHER and not verified
    return [b for b in bookings if b.verified or b.account_id == account_id or together]


def check_booking_allowed(rules: BookingRules, history: list[BookingFact],
                          no_shows: list[dt.date], *, visit_date: dt.date,
                          department_code: str, doctor_code: str, today: dt.date) -> None:
    """Raise Refusal when one more booking would break a limit or the patient is banned.

    ``history`` is the patient's bookings (any dates); every booking but a cancelled one counts
    toward the day's limits: a visited or missed slot was used all the same. ``no_shows`` are
    the dates of the patient's missed visits, the only input of the ban.
    """
    allowed_from = ban_ends(rules, no_shows, today)
    if allowed_from is not None:
        raise Refusal("booking.banned", limit=rules.no_show_limit,
                      window_days=rules.no_show_window_days,
                      allowed_from=allowed_from.isoformat(),
                      until=(allowed_from - dt.timedelta(days=1)).isoformat())
    same_day = [b for b in history if b.visit_date == visit_date and b.status != "cancelled"]
    checks = (
        ("booking.per_doctor", rules.per_doctor_per_day,
         [b for b in same_day if b.doctor_code == doctor_code]),
        ("booking.per_department", rules.per_department_per_day,
         [b for b in same_day if b.department_code == department_code]),
        ("booking.per_day", rules.per_id_per_day, same_day),
    )
    for code, limit, counted in checks:
        if len(counted) >= limit:
            raise Refusal(code, limit=limit, visit_date=visit_date.isoformat())


def check_unpaid_holds(rules: BookingRules, unpaid_holds: int) -> None:
    """Raise Refusal when the account already holds as many unpaid bookings as it may."""
    if unpaid_holds >= rules.unpaid_holds_per_account:
        raise Refusal("booking.unpaid_holds", limit=rules.unpaid_holds_per_account)


def ban_ends(rules: BookingRules, no_shows: list[dt.date], today: dt.date) -> dt.date | None:
    """The first day the patient may book again, or None when not banned on ``today``.

    A no-show that brings the count within ``no_show_window_days`` (that day and the days
    before it) to ``no_show_limit`` starts a ban of ``ban_days`` days, that day included.
    """
    window = dt.timedelta(days=rules.no_show_window_days)
    past = sorted(d for d in no_shows if d <= today)
    latest_end: dt.date | None = None
    for index, day in enumerate(past):
        in_window = sum(1 for other in past[: index + 1] if day - other < window)
        if in_window >= rules.no_show_limit:
            end = day + dt.timedelta(days=rules.ban_days)
            latest_end = end if latest_end is None or end > latest_end else latest_end
    if latest_end is not None and today < latest_end:
        return latest_end
    return None
