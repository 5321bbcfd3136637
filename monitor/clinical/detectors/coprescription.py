"""Risky co-prescriptions: opioid + benzodiazepine, opioid + gabapentinoid.

Dangerous where nobody watches breathing (compounded respiratory depression, falls),
worst in the elderly; routine sedation in an ICU. Severity follows the setting: a
transfer between monitored and unmonitored units re-grades an open alert.
"""

from __future__ import annotations

from ...alerts import AlertKind, Severity
from ..context import ClinicalRules, Moment
from ..state import BENZODIAZEPINE, GABAPENTINOID, OPIOID, Order, OrderVersion, PatientState
from .finding import Finding

Active = list[tuple[Order, OrderVersion]]


def detect_coprescriptions(state: PatientState, moment: Moment, rules: ClinicalRules) -> list[Finding]:
    if state.comfort_care:
        return []
    opioids = _active(moment, OPIOID, rules)
    if not opioids:
        return []
    benzos = _active(moment, BENZODIAZEPINE, rules)
    gabas = _active(moment, GABAPENTINOID, rules)
    findings = []
    if benzos:
        findings.append(_opioid_benzodiazepine(opioids, benzos, gabas, moment, rules))
    if gabas and not moment.monitored:
        findings.append(_opioid_gabapentinoid(opioids, gabas, moment, rules))
    return findings


def _active(moment: Moment, flag: int, rules: ClinicalRules) -> Active:
    """Active orders of a class; a one-time dose counts only while its effect lasts."""
    t = moment.t
    found = []
    for order, version in moment.active:
        if not version.flags & flag or (version.one_time and t >= version.at + rules.one_time_active):
            continue
        found.append((order, version))
    return found


def _opioid_benzodiazepine(opioids: Active, benzos: Active, gabas: Active, moment: Moment,
                           rules: ClinicalRules) -> Finding:
    triple = bool(gabas)
    involved = opioids + benzos + (gabas if triple else [])
    if moment.monitored:
        severity = Severity.INFO
    elif triple or moment.elderly:
        severity = Severity.CRITICAL
    else:
        severity = Severity.HIGH
    severity = _step_down_if_prn_only(severity, involved, rules)
    drugs = _drug_names(involved)
    setting = "a monitored unit" if moment.monitored else "an unmonitored unit"
    combo = "Opioid + benzodiazepine + gabapentinoid" if triple else "Opioid + benzodiazepine"
    return Finding(
        kind=AlertKind.OPIOID_BENZODIAZEPINE,
        severity=severity,
        evidence=_evidence(involved),
        summary=f"{combo} active on {setting}: {', '.join(drugs)}",
        details={"drugs": drugs, "triple": triple, "monitored": moment.monitored,
                 "prn_only": _prn_only(involved), "age": moment.age},
    )


def _opioid_gabapentinoid(opioids: Active, gabas: Active, moment: Moment, rules: ClinicalRules) -> Finding:
    involved = opioids + gabas
    severity = Severity.HIGH if moment.elderly else Severity.WARNING
    severity = _step_down_if_prn_only(severity, involved, rules)
    drugs = _drug_names(involved)
    return Finding(
        kind=AlertKind.OPIOID_GABAPENTINOID,
        severity=severity,
        evidence=_evidence(involved),
        summary=f"Opioid + gabapentinoid active on an unmonitored unit: {', '.join(drugs)}",
        details={"drugs": drugs, "monitored": False, "prn_only": _prn_only(involved), "age": moment.age},
    )


def _prn_only(involved: Active) -> bool:
    return all(version.prn for _, version in involved)


def _step_down_if_prn_only(severity: Severity, involved: Active, rules: ClinicalRules) -> Severity:
    if rules.settings.prn_only_step_down and _prn_only(involved):
        return severity.lowered()
    return severity


def _drug_names(involved: Active) -> list[str]:
    return sorted({version.drug for _, version in involved})


def _evidence(involved: Active) -> list[str]:
    """The event behind each order's version in force, oldest first."""
    return [version.event_id for _, version in sorted(involved, key=lambda item: (item[1].at, item[1].event_id))]
