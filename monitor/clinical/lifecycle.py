"""Alert episodes: turn detector findings into open / updated / resolved records.

Pharmacists expect one open alert per patient and kind; a persisting condition does not
re-alert; a change of severity updates the same alert (a rise is a re-alert, a fall keeps
the queue honest, e.g. after a transfer to a monitored unit); a cleared condition resolves
it; a later occurrence is a new episode with a new id.

The pharmacist queue's actions (:mod:`monitor.clinical.actions`) shape what is published:
while an episode is snoozed its re-sends at the same or a lower severity are tracked in
state but not published; a rise above the snoozed severity publishes at once and ends the
snooze; the snooze's end (event time) publishes an ``updated`` record with reason
``snooze_expired`` so the alert returns to the worklist; resolutions always publish. A
rise also clears an acknowledgement (new facts deserve a new look).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from ..alerts import AlertKind, AlertRecord, AlertStatus, Severity, make_alert_id
from .context import ClinicalRules, Moment
from .detectors.finding import Finding
from .evidence import readable_evidence
from .recommendations import recommendation, resolution_text
from .state import Episode, PatientState

#: Fixed order of evaluation: OIH before the escalation rule that depends on it.
KINDS = (
    AlertKind.OIH_SUSPECTED,
    AlertKind.OPIOID_ESCALATION_DURING_OIH,
    AlertKind.OPIOID_BENZODIAZEPINE,
    AlertKind.OPIOID_GABAPENTINOID,
    AlertKind.MISSING_LAXATIVE,
)

#: Which of the moment's assumption flags matter for each kind.
_RELEVANT_FLAGS = {
    AlertKind.OPIOID_BENZODIAZEPINE: {"age_unknown", "monitoring_unknown"},
    AlertKind.OPIOID_GABAPENTINOID: {"age_unknown", "monitoring_unknown"},
    AlertKind.MISSING_LAXATIVE: {"age_unknown"},
}

#: Given an open episode with no finding now: a reason to resolve, or None to hold it.
HoldCheck = Callable[[Episode], "str | None"]


def to_datetime(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


class EpisodeBook:
    """Applies one kind's finding to the patient's episodes and collects the records."""

    def __init__(self, state: PatientState, moment: Moment, rules: ClinicalRules, unit: str | None) -> None:
        self.state = state
        self.moment = moment
        self.rules = rules
        self.unit = unit
        self.records: list[AlertRecord] = []

    def settle(self, kind: AlertKind, finding: Finding | None, hold: HoldCheck | None = None,
               default_reason: str = "condition_cleared") -> Episode | None:
        """Bring ``kind``'s episode in line with ``finding``; returns the open episode, if any."""
        episode = self.state.episodes.get(kind.value)
        if finding is not None and episode is None:
            return self._open(kind, finding)
        if finding is not None and episode is not None:
            self._continue(kind, episode, finding)
            return episode
        if episode is None:
            return None
        reason = hold(episode) if hold is not None else default_reason
        if reason is None:
            if self._snooze_ended(episode):  # held open with no new finding: back on the worklist as it was
                self._publish_update(kind, episode, Severity(episode.severity), episode.summary, "snooze_expired", {})
            return episode
        if reason == "condition_cleared" and self._retracted(episode):
            reason = "retracted"
        self.resolve(kind, episode, reason)
        return None

    def resolve(self, kind: AlertKind, episode: Episode, reason: str) -> None:
        episode.revision += 1
        del self.state.episodes[kind.value]
        self.records.append(self._record(kind, episode, AlertStatus.RESOLVED, Severity(episode.severity),
                                         resolution_text(reason), reason, self.moment.t, {}))

    def resolve_all(self, reason: str) -> None:
        for kind in KINDS:
            episode = self.state.episodes.get(kind.value)
            if episode is not None:
                self.resolve(kind, episode, reason)

    # -- internals -----------------------------------------------------------------------
    def _open(self, kind: AlertKind, finding: Finding) -> Episode:
        trigger = self.moment.trigger
        anchor = finding.anchor_event_id or (trigger.event_id if trigger is not None else finding.evidence[-1])
        raised_at = finding.raised_at if finding.raised_at is not None else self.moment.t
        episode = Episode(
            alert_id=make_alert_id(self.state.patient_id, kind, anchor),
            revision=1,
            severity=finding.severity.value,
            opened_at=raised_at,
            evidence=list(finding.evidence),
            details=_episode_memory(kind, finding, self.moment.t),
            summary=finding.summary,
        )
        self.state.episodes[kind.value] = episode
        self.records.append(self._record(kind, episode, AlertStatus.OPEN, finding.severity, finding.summary,
                                         "opened", raised_at, finding.details))
        return episode

    def _continue(self, kind: AlertKind, episode: Episode, finding: Finding) -> None:
        episode.details.update(_episode_memory(kind, finding, self.moment.t, keep=episode.details))
        previous = Severity(episode.severity)
        evidence_withdrawn = self._retracted(episode)
        changed = finding.severity is not previous or evidence_withdrawn
        snooze_ended = self._snooze_ended(episode)
        if not changed and not snooze_ended:
            return
        if finding.severity.rank > previous.rank:
            reason = "severity_increased"
        elif finding.severity.rank < previous.rank:
            reason = "severity_decreased"
        else:
            reason = "evidence_retracted" if evidence_withdrawn else "snooze_expired"
        episode.severity = finding.severity.value
        episode.evidence = list(finding.evidence)
        episode.summary = finding.summary
        if episode.snoozed:
            if finding.severity.rank <= Severity(episode.snooze_severity or previous.value).rank:
                return  # tracked, not published: the pharmacist snoozed this severity
            episode.snoozed_until = episode.snooze_severity = None  # a rise breaks through the snooze
        if reason == "severity_increased":
            episode.acknowledged_at = episode.acknowledged_by = None
        self._publish_update(kind, episode, finding.severity, finding.summary, reason, finding.details)

    def _publish_update(self, kind: AlertKind, episode: Episode, severity: Severity, summary: str, reason: str,
                        details: dict[str, Any]) -> None:
        episode.revision += 1
        self.records.append(self._record(kind, episode, AlertStatus.UPDATED, severity, summary, reason,
                                         self.moment.t, details))

    def _snooze_ended(self, episode: Episode) -> bool:
        """True once, when event time reaches the end of the episode's snooze (which it clears)."""
        if episode.snoozed_until is None or self.moment.t < episode.snoozed_until:
            return False
        episode.snoozed_until = episode.snooze_severity = None
        return True

    def _retracted(self, episode: Episode) -> bool:
        return bool(self.moment.retracted_event_ids.intersection(episode.evidence))

    def _record(self, kind: AlertKind, episode: Episode, status: AlertStatus, severity: Severity, summary: str,
                reason: str, raised_at: float, details: dict[str, Any]) -> AlertRecord:
        flags = sorted(set(self.moment.flags) & _RELEVANT_FLAGS.get(kind, set()))
        trigger = self.moment.trigger
        return AlertRecord(
            alert_id=episode.alert_id,
            revision=episode.revision,
            status=status,
            kind=kind,
            severity=severity,
            patient_id=self.state.patient_id,
            raised_at=to_datetime(raised_at),
            opened_at=to_datetime(episode.opened_at),
            evidence=list(episode.evidence),
            recommendation=(recommendation(kind, severity, details) if status is not AlertStatus.RESOLVED
                            else summary),
            rule_version=self.rules.settings.rule_version,
            summary=summary,
            reason=reason,
            unit=self.state.unit,
            flags=flags,
            details=_public_details(details),
            trigger_event_id=trigger.event_id if trigger is not None else None,
            evidence_items=readable_evidence(self.state, episode.evidence, self.rules.factors),
        )


def _episode_memory(kind: AlertKind, finding: Finding, t: float, keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The few figures an episode must remember to know when it ends."""
    if kind is AlertKind.OIH_SUSPECTED:
        memory = {"last_signature_at": t}
        if keep is None or finding.details.get("escalation_at") != keep.get("escalation_at"):
            memory["escalation_at"] = finding.details["escalation_at"]
            memory["pre_escalation_mme"] = finding.details["pre_escalation_mme"]
        return memory
    if kind is AlertKind.OPIOID_ESCALATION_DURING_OIH and keep is None:
        return {"mme_before": finding.details["mme_before"]}
    return {}


def _public_details(details: dict[str, Any]) -> dict[str, Any]:
    """Event times in details become ISO 8601 strings for the record."""
    out = dict(details)
    for key in ("escalation_at", "opioid_started_at"):
        if isinstance(out.get(key), float):
            out[key] = to_datetime(out[key]).isoformat()
    return out
