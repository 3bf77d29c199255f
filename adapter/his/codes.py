"""HL7 v2.5 table values the adapter and the simulator read and write, each named once here."""

from __future__ import annotations

# HL7 table 0357, message error condition codes (ERR-3, MSA-6 of v2.3).
MESSAGE_ACCEPTED = "0"
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION_ID = "203"
UNKNOWN_KEY = "204"
DUPLICATE_KEY = "205"
APPLICATION_RECORD_LOCKED = "206"
APPLICATION_INTERNAL_ERROR = "207"

ERROR_TEXTS: dict[str, str] = {
    MESSAGE_ACCEPTED: "Message accepted",
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    UNKNOWN_KEY: "Unknown key identifier",
    DUPLICATE_KEY: "Duplicate key identifier",
    APPLICATION_RECORD_LOCKED: "Application record locked",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# The conditions under which a receiver does not process a message at all (type, event,
# processing id, version): answered AR; anything it understood and refused is AE.
NOT_PROCESSED = frozenset({
    UNSUPPORTED_MESSAGE_TYPE, UNSUPPORTED_EVENT_CODE, UNSUPPORTED_PROCESSING_ID,
    UNSUPPORTED_VERSION_ID,
})

# HL7 table 0008, acknowledgment codes (MSA-1): application (A) and commit (C) accept, error,
# reject.
ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")
ACCEPT_ACK_CODES = ("AA", "CA")
ERROR_ACK_CODES = ("AE", "CE")  # understood, then refused or failed
REFUSAL_ACK_CODES = ("AE", "AR", "CE", "CR")

# HL7 table 0471, query name: QPD-1 of the v2.5 "Find Candidates" query (chapter 3, QBP^Q22).
FIND_CANDIDATES = "Q22^Find Candidates^HL70471"

# HL7 table 0278, filler status codes (SCH-25) read and written for pool slots. "Open" is a local
# value (table 0278 has none for a free slot); "Booked"/"Blocked"/"Cancelled"/"Deleted" are HL7's.
SLOT_OPEN = "Open"
SLOT_BOOKED = "Booked"
SLOT_BLOCKED = "Blocked"
SLOT_CANCELLED = "Cancelled"
SLOT_DELETED = "Deleted"
# Statuses (compared in lower case) that take a slot out of the pool; "Dc" is discontinued.
CLOSED_STATUSES = frozenset({"blocked", "cancelled", "deleted", "dc"})

# Queue events (SIU^S14, SCH-6 identifier QUEUE): SCH-25 filler status -> what happened, compared
# in lower case. Table 0278 names Booked, Started, Complete, Noshow, Cancelled; "Arrived" and
# "Recalled" are local values (0278 has no code for a check-in or a return to the line).
QUEUE_REASON = "QUEUE"
QUEUE_STATUSES = {
    "booked": "registered",
    "arrived": "arrived",
    "started": "called",
    "complete": "finished",
    "noshow": "no_show",
    "recalled": "recalled",
    "cancelled": "cancelled",
}
# Result status (OBR-25, table 0123) and observation result status (OBX-11, table 0085).
RESULT_FINAL = "F"
RESULT_CORRECTED = "C"
RESULT_CANCELLED = "X"
OBSERVATION_DELETED = ("D", "W")  # D deleted, W posted to the wrong patient: never shown
# Abnormal flags (OBX-8, table 0078) that mark a critical (panic) value.
CRITICAL_FLAGS = ("HH", "LL", "AA")
