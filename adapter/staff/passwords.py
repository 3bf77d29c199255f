"""Password hashes: Argon2id through argon2-cffi (RFC 9106), never a home-made scheme."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from adapter.refusals import Refusal

# argon2-cffi's defaults are RFC 9106's second recommended profile (64 MiB, 3 passes).
_HASHER = PasswordHasher()

MIN_LENGTH = 12
# Bounded: hashing a megabyte-long "password" on every attempt is a denial of service.
MAX_LENGTH = 256


def check_password_rules(password: str) -> None:
    """Refuse a password too short to resist guessing or too long to hash cheaply."""
    if len(password) < MIN_LENGTH:
        raise Refusal("staff.password_too_short", minimum=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise Refusal("staff.password_too_long", maximum=MAX_LENGTH)


def hash_password(password: str) -> str:
    """The encoded Argon2id hash (parameters and salt included) to keep for ``password``."""
    return _HASHER.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """Whether ``password`` matches the kept hash; a malformed hash matches nothing."""
    try:
        return _HASHER.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (rehash at sign-in)."""
    return _HASHER.check_needs_rehash(encoded)


@cache
def _unknown_user_hash() -> str:
    return _HASHER.hash("no staff account has this password")


def spend_like_a_check(password: str) -> None:
    """Cost what a real check costs, so an unknown username is not told by the time taken."""
    verify_password(_unknown_user_hash(), password)
