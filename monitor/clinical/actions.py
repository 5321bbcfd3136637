"""The pharmacist's actions applied to a patient's alert episodes (pure: no I/O, no clock).

An action has no place in the patient's event-time line (its ``occurred_at`` is the
pharmacist's wall clock, kept for the audit), so it is applied on arrival at the
patient's event-time clock: a snooze of ``snooze_for`` lasts until ``state.clock +
snooze_for``, which is the same instant whether the feed is live (event time tracks wall
time) or a research extract shifted by decades. What a snooze or an acknowledgement does to
later records is :mod:`monitor.clinical.lifecycle`'s business.
"""

from __future__ import annotations

from ..actions import ActionKind
from ..events import AlertAction
from .state import Episode, PatientState


def find_episode(state: PatientState | None, alert_id: str) -> Episode | None:
    """The open episode an action names (None: unknown, or resolved already)."""
    if state is None:
        return None
    return next((episode for episode in state.episodes.values() if episode.alert_id == alert_id), None)


def apply_action(state: PatientState | None, action: AlertAction) -> str:
    """Apply ``action``; returns its outcome code (``applied`` or ``unknown_alert``)."""
    episode = find_episode(state, action.alert_id)
    if state is None or episode is None:
        return "unknown_alert"
    if action.action is ActionKind.ACKNOWLEDGE:
        episode.acknowledged_at, episode.acknowledged_by = state.clock, action.user
        episode.snoozed_until = episode.snooze_severity = None  # acknowledged: nothing left to bring back
    else:
        assert action.snooze_for is not None  # the model requires it for a snooze
        episode.snoozed_until = state.clock + action.snooze_for.total_seconds()
        episode.snooze_severity = episode.severity
    return "applied"
