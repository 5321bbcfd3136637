"""What the pharmacist is pointed to, per alert kind, in the project's own words."""

from __future__ import annotations

from typing import Any

from ..alerts import AlertKind, Severity

_OIH = (
    "Suspected opioid-induced hyperalgesia: do not escalate the opioid further. Consider "
    "reducing the dose (over days after a short exposure; about 10% a month for long-term "
    "therapy, to avoid withdrawal), rotating to methadone or buprenorphine, adding an NMDA "
    "antagonist such as ketamine, and non-opioid adjuncts (gabapentinoid, NSAID/COX-2 "
    "inhibitor, acetaminophen). Confirm no disease progression explains the pain."
)
_OIH_ROTATION = (
    "Pain is rising across an opioid rotation; the computed MME rise reflects the switch "
    "(methadone's factor inflates it), not an escalation. Review the rotation's adequacy; "
    "no dose escalation is suggested."
)
_ESCALATION = (
    "The opioid dose was raised while opioid-induced hyperalgesia is suspected; a higher "
    "dose can worsen hyperalgesia. Contact the prescriber: prefer dose reduction, rotation "
    "or an NMDA antagonist over escalation."
)
_BENZO = (
    "Opioid with a benzodiazepine: compounded respiratory and CNS depression and falls. "
    "Outside continuous respiratory monitoring, review the need for both, prefer the lowest "
    "doses, avoid PRN stacking, and arrange monitoring (SpO2/capnography) if both continue."
)
_BENZO_MONITORED = (
    "Opioid with a benzodiazepine on a monitored unit: recorded for context (routine "
    "sedation practice); re-grade on transfer to an unmonitored unit."
)
_GABA = (
    "Opioid with a gabapentinoid outside continuous monitoring: additive respiratory "
    "depression and sedation, worse in the elderly and in renal impairment. Review the "
    "gabapentinoid dose and the need for both; monitor sedation and respiration."
)
_LAXATIVE = (
    "Opioid without a scheduled bowel regimen: opioid-induced constipation is near-universal. "
    "Suggest a scheduled stimulant or osmotic laxative (e.g. senna, polyethylene glycol 3350); "
    "docusate alone is not sufficient."
)

_RESOLUTION = {
    "condition_cleared": "The condition no longer holds.",
    "retracted": "An order behind this alert was entered in error and retracted.",
    "discharged": "The patient was discharged.",
    "comfort_care": "The patient moved to comfort care.",
    "rotation": "The dose rise was an opioid rotation, not an escalation.",
    "dose_reduced": "The total daily MME fell back to its pre-escalation level.",
    "window_elapsed": "A whole window passed without the OIH signature.",
    "disease_progression": "Disease progression was documented, which explains rising pain.",
    "inactive": "No event for this patient within the inactivity limit; presumed discharged "
                "(a discharge message may have been missed). Re-alerts on the next event if still relevant.",
}


def recommendation(kind: AlertKind, severity: Severity, details: dict[str, Any]) -> str:
    if kind is AlertKind.OIH_SUSPECTED:
        return _OIH_ROTATION if details.get("rotation") else _OIH
    if kind is AlertKind.OPIOID_ESCALATION_DURING_OIH:
        return _ESCALATION
    if kind is AlertKind.OPIOID_BENZODIAZEPINE:
        return _BENZO_MONITORED if severity is Severity.INFO and details.get("monitored") else _BENZO
    if kind is AlertKind.OPIOID_GABAPENTINOID:
        return _GABA
    return _LAXATIVE


def resolution_text(reason: str) -> str:
    return "Resolved: " + _RESOLUTION.get(reason, "the condition no longer holds.")
