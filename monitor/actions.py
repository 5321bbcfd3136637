"""The pharmacist's actions on an alert, as fixed vocabularies (data, not scattered literals).

The queue offers exactly these choices, the API validates against them, the event model
refuses anything else, and the metrics use the codes as (bounded) labels.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum


class ActionKind(str, Enum):
    ACKNOWLEDGE = "acknowledge"
    SNOOZE = "snooze"


#: Intervention codes an acknowledgement records, with the text the page shows.
INTERVENTIONS: dict[str, str] = {
    "dose_reduced": "Dose reduced",
    "opioid_rotated": "Opioid rotated",
    "drug_discontinued": "Drug discontinued",
    "laxative_ordered": "Laxative ordered",
    "monitoring_ordered": "Monitoring ordered (SpO2 / capnography)",
    "prescriber_contacted": "Prescriber contacted",
    "not_clinically_relevant": "Not clinically relevant",
}

#: Snooze durations the page offers (the API accepts any whole number of minutes up to the maximum).
SNOOZE_CHOICES: dict[str, timedelta] = {
    "30 minutes": timedelta(minutes=30),
    "1 hour": timedelta(hours=1),
    "4 hours": timedelta(hours=4),
    "12 hours": timedelta(hours=12),
    "24 hours": timedelta(hours=24),
}

#: The longest snooze: a snoozed alert must come back within a day of event time.
MAX_SNOOZE = timedelta(hours=24)

#: What became of an action in the monitor (a bounded metric label).
ACTION_OUTCOMES = ("applied", "unknown_alert", "duplicate")
