"""Step-event params for every example action: those the worker takes and those it
refuses as invalid (validation). The unit tests check the params schema against
them; the integration tests send them to a real worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).parents[1] / "examples" / "actions"
SMS = {"country": "fr", "tenant": "acme", "phone": "+33612345678", "text": "Hi"}
CONTACT = {"contactId": "c-1", "email": "ada@example.com", "optIn": True}
FULL_CONTACT = {
    **CONTACT,
    "firstName": "Ada",
    "age": 36,
    "score": 4,  # an integer is a decimal
    "lastPurchase": None,
    "birthday": "1815-12-10",
    "address": {"city": "London"},
    "interests": ["maths", None],
    "orders": [{"id": 1}, None],
}
# (action, params, taken by the worker)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("sendSms", SMS, True),
    ("sendSms", {**SMS, "country": 33, "tags": ["a", None], "priority": None}, True),
    ("sendSms", {**SMS, "locale": "fr-FR", "priority": 2}, True),
    ("sendSms", {k: v for k, v in SMS.items() if k != "tenant"}, False),
    ("sendSms", {k: v for k, v in SMS.items() if k != "country"}, False),
    ("sendSms", {**SMS, "country": ".."}, False),
    ("sendSms", {**SMS, "country": True}, False),
    ("sendSms", {**SMS, "tenant": "a\r\nX-Evil: 1"}, False),
    ("sendSms", {**SMS, "priority": "high"}, False),
    ("sendSms", {**SMS, "tags": "a"}, False),
    ("sendSms", {**SMS, "tags": [1]}, False),
    ("sendSms", {**SMS, "text": 7}, False),
    ("upsertContact", CONTACT, True),
    ("upsertContact", FULL_CONTACT, True),
    ("upsertContact", {**CONTACT, "lastPurchase": "2026-11-27T12:00:00Z"}, True),
    ("upsertContact", {**CONTACT, "lastPurchase": "2026-11-27T12:00:00.5+01:00"}, True),
    ("upsertContact", {**CONTACT, "optIn": "yes"}, False),
    ("upsertContact", {**CONTACT, "age": 1.5}, False),
    ("upsertContact", {**CONTACT, "score": "4"}, False),
    ("upsertContact", {**CONTACT, "lastPurchase": "yesterday"}, False),
    ("upsertContact", {**CONTACT, "lastPurchase": "2026-11-27"}, False),
    ("upsertContact", {**CONTACT, "birthday": "27/11/2026"}, False),
    ("upsertContact", {**CONTACT, "birthday": "2026-11-27T12:00:00Z"}, False),
    ("upsertContact", {**CONTACT, "address": ["London"]}, False),
    ("upsertContact", {**CONTACT, "orders": [1]}, False),
    ("upsertContact", {**CONTACT, "interests": [["nested"]]}, False),
    ("upsertContact", {k: v for k, v in CONTACT.items() if k != "email"}, False),
    ("upsertContact", {**CONTACT, "contactId": ""}, False),
    ("getLoyaltyTier", {"memberId": "m-1"}, True),
    ("getLoyaltyTier", {"memberId": 7}, True),
    ("getLoyaltyTier", {}, False),
    ("getLoyaltyTier", {"memberId": None}, False),
    ("getLoyaltyTier", {"memberId": 1.5}, False),
    ("getLoyaltyTier", {"memberId": "."}, False),
    ("openTicketBearer", {"subject": "Refund"}, True),
    ("openTicketBearer", {"subject": "Refund", "priority": "high"}, True),
    ("openTicketBearer", {"priority": "high"}, False),
    ("openTicketBearer", {"subject": ["Refund"]}, False),
    ("sendPushApiKey", {"deviceId": "d", "title": "Hi"}, True),
    ("sendPushApiKey", {"deviceId": "d"}, False),
    ("getForecastApiKeyQuery", {"city": "Paris"}, True),
    ("getForecastApiKeyQuery", {"city": 75}, False),
    ("createNoteBasic", {"contactId": "c", "text": "t"}, True),
    ("createNoteBasic", {"contactId": "c", "text": False}, False),
    ("sendSmsOAuth2", {"phone": "+1", "text": "t"}, True),
    ("sendSmsOAuth2", {"phone": "+1"}, False),
    ("addPointsCustomAuth", {"memberId": "m", "points": 10}, True),
    ("addPointsCustomAuth", {"memberId": "m", "points": "10"}, False),
]
