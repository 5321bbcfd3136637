"""Deterministic generator of the demo feed and of the alerts it should produce.

Run ``python -m monitor.demo.scenarios`` to regenerate ``feed.ndjson`` and
``expected_alerts.json`` next to this module (or :func:`write_demo` into any directory).

Every patient is one named scenario: a one-line clinical story plus the alert episodes
that clinical-rules.md says it must produce. The expectations are written here from the
rules, never read back from the engine: ``tests/test_demo_feed.py`` replays the feed
through ``medmon evaluate`` and compares.

No wall clock, one fixed seed: two runs write byte-identical files. Times are local
hospital time (US Eastern, UTC-05:00 for the whole week; DST starts 2026-03-08).
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SEED = 20260302
TZ = timezone(timedelta(hours=-5))
#: Hour 0 of the feed: Monday 2026-03-02 07:00 local (shift change).
START = datetime(2026, 3, 2, 7, 0, tzinfo=TZ)
FEED_NAME = "feed.ndjson"
EXPECTED_NAME = "expected_alerts.json"

# -- order templates (realistic pharmacy units) --------------------------------------------
# Unmonitored drugs: the bulk of a hospital's order traffic.
CEFTRIAXONE = dict(drug="ceftriaxone", rxnorm="2193", route="IV", dose=1, dose_unit="g", frequency_per_day=1)
VANCOMYCIN = dict(drug="vancomycin", rxnorm="11124", route="IV", dose=1250, dose_unit="mg", frequency_per_day=2)
NS_1000 = dict(drug="sodium chloride 0.9% (normal saline)", route="IV", dose=1000, dose_unit="mL",
               frequency_per_day=1)
NS_BOLUS = dict(drug="sodium chloride 0.9% (normal saline) bolus", route="IV", dose=1000, dose_unit="mL",
                one_time=True)
LR = dict(drug="lactated Ringer's", route="IV", dose=1000, dose_unit="mL", frequency_per_day=2)
KCL = dict(drug="potassium chloride ER", rxnorm="8591", route="PO", dose=20, dose_unit="mEq", frequency_per_day=2)
KCL_IV = dict(drug="potassium chloride in water", rxnorm="8591", route="IV", dose=20, dose_unit="mEq",
              one_time=True)
GLARGINE = dict(drug="insulin glargine", route="SC", dose=18, dose_unit="units", frequency_per_day=1)
INSULIN_DRIP = dict(drug="insulin regular (human) infusion", route="IV", dose=6, dose_unit="units/h",
                    frequency_per_day=24)
LISPRO = dict(drug="insulin lispro sliding scale", route="SC", dose=2, dose_max=10, dose_unit="units",
              frequency_per_day=4, prn=True)
ENOXAPARIN = dict(drug="enoxaparin", rxnorm="67108", route="SC", dose=40, dose_unit="mg", frequency_per_day=1)
HEPARIN_SC = dict(drug="heparin", rxnorm="5224", route="SC", dose=5000, dose_unit="units", frequency_per_day=3)
HEPARIN_DRIP = dict(drug="heparin sodium infusion", rxnorm="5224", route="IV", dose=1300, dose_unit="units/h",
                    frequency_per_day=24)
PANTOPRAZOLE = dict(drug="pantoprazole", rxnorm="40790", route="PO", dose=40, dose_unit="mg", frequency_per_day=1)
PANTOPRAZOLE_IV = dict(drug="pantoprazole", rxnorm="40790", route="IV", dose=1, dose_unit="vial", strength=40,
                       strength_unit="mg", frequency_per_day=2)
ONDANSETRON = dict(drug="ondansetron", rxnorm="26225", route="IV", dose=4, dose_unit="mg", frequency_per_day=4,
                   prn=True)
APAP_PRN = dict(drug="acetaminophen", rxnorm="161", route="PO", dose=2, dose_unit="tablet", strength=325,
                strength_unit="mg", frequency_per_day=4, prn=True)
APAP_SCHED = dict(drug="acetaminophen", rxnorm="161", route="PO", dose=1000, dose_unit="mg", frequency_per_day=3)
APAP_IV = dict(drug="acetaminophen", rxnorm="161", route="IV", dose=1, dose_unit="g", frequency_per_day=4)
FLU_VACCINE = dict(drug="influenza vaccine, inactivated quadrivalent", route="IM", dose=0.5, dose_unit="mL",
                   one_time=True)
CEFAZOLIN = dict(drug="cefazolin", route="IV", dose=1, dose_unit="vial", strength=2, strength_unit="g",
                 frequency_per_day=3)
FUROSEMIDE = dict(drug="furosemide", rxnorm="4603", route="IV", dose=40, dose_unit="mg", frequency_per_day=2)
# Bowel regimens: senna and PEG are scheduled regimens; docusate alone and PRN bisacodyl are not.
SENNA = dict(drug="sennosides", route="PO", dose=2, dose_unit="tablet", strength=8.6, strength_unit="mg",
             frequency_per_day=1)
PEG = dict(drug="polyethylene glycol 3350", route="PO", dose=17, dose_unit="g", frequency_per_day=1)
DOCUSATE = dict(drug="docusate sodium", route="PO", dose=100, dose_unit="mg", frequency_per_day=2)
BISACODYL_PRN = dict(drug="bisacodyl", route="PR", dose=10, dose_unit="mg", frequency_per_day=1, prn=True)
# Opioids, benzodiazepines, gabapentinoids.
OXY_PRN = dict(drug="oxycodone", rxnorm="7804", route="PO", dose=5, dose_unit="mg", frequency_per_day=6, prn=True)
OXY_SCHED = dict(drug="oxycodone", rxnorm="7804", route="PO", dose=5, dose_unit="mg", frequency_per_day=4)
LORAZEPAM = dict(drug="lorazepam", rxnorm="6470", route="PO", dose=0.5, dose_unit="mg", frequency_per_day=3)
GABAPENTIN = dict(drug="gabapentin", rxnorm="25480", route="PO", dose=300, dose_unit="mg", frequency_per_day=3)


# -- scenario model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    kind: str
    max_severity: str
    final_status: str
    final_reason: str


@dataclass
class Scenario:
    """One patient: a named story, its events and the alert episodes the rules call for."""

    feed: "DemoFeed"
    name: str
    patient_id: str
    story: str
    why: str
    expect: list[Expect] = field(default_factory=list)
    _n: int = 0
    _orders: dict[str, str] = field(default_factory=dict)

    # event builders; ``h`` is hours after START -------------------------------------------
    def _event(self, prefix: str, type_: str, h: float, patient: dict[str, Any] | None = None,
               **fields: Any) -> dict[str, Any]:
        self._n += 1
        event = {
            "type": type_,
            "event_id": f"{prefix}-{self.patient_id[-5:]}-{self._n:03d}",
            "occurred_at": (START + timedelta(hours=h)).isoformat(),
            "patient": {"id": self.patient_id, **(patient or {})},
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.feed.events.append(event)
        return event

    def admit(self, h: float, unit: str, birth_date: date, monitored: bool | None = None) -> dict[str, Any]:
        day = (START + timedelta(hours=h)).date()
        age = day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
        assert self.story.startswith(str(age)), f"{self.name}: the story must start with the age ({age})"
        patient: dict[str, Any] = {"birth_date": birth_date.isoformat(), "unit": unit}
        if monitored is not None:
            patient["monitored"] = monitored
        return self._event("adt", "patient_update", h, patient)

    def transfer(self, h: float, unit: str) -> dict[str, Any]:
        return self._event("adt", "patient_update", h, {"unit": unit})

    def update(self, h: float, **flags: bool) -> dict[str, Any]:
        return self._event("adt", "patient_update", h, **flags)

    def discharge(self, h: float) -> dict[str, Any]:
        return self._event("adt", "patient_update", h, discharged=True)

    def order_id(self, key: str) -> str:
        if key not in self._orders:
            self._orders[key] = f"ORD-{self.feed.rng.randrange(100000, 999999)}"
        return self._orders[key]

    def rx(self, h: float, key: str, template: dict[str, Any] | None = None, action: str = "new",
           **fields: Any) -> dict[str, Any]:
        spec = {**(template or {}), **fields}
        if action in ("discontinue", "entered_in_error"):
            spec = {k: spec[k] for k in ("drug", "rxnorm", "route") if k in spec}
        if spec.get("prn") is False:
            del spec["prn"]
        if spec.get("one_time") is False:
            del spec["one_time"]
        return self._event("rx", "prescription", h, order_id=self.order_id(key), action=action, **spec)

    def stop(self, h: float, key: str, template: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return self.rx(h, key, template, "discontinue", **fields)

    def pain(self, h: float, score: int, site: str, allodynia: bool | None = None) -> dict[str, Any]:
        return self._event("pain", "pain_score", h, score=max(0, min(10, score)), body_site=site,
                           allodynia=allodynia)

    def pains(self, points: list[tuple[float, int]], site: str, **fields: Any) -> None:
        for h, score in points:
            self.pain(h, score, site, **fields)

    def pain_series(self, start: float, end: float, level: int, site: str) -> None:
        """Charting every 4-8 h around a stable level (+/- 1), as nurses reassess."""
        rng, h = self.feed.rng, start
        while h <= end:
            self.pain(h, level + rng.choice((-1, 0, 0, 1)), site)
            h += rng.choice((5, 6, 6, 7, 8)) + rng.choice((0, 0.25, 0.5, 0.75))

    def duplicate(self, event: dict[str, Any]) -> None:
        """The same event delivered a second time (a producer retry)."""
        self.feed.events.append(dict(event))


class DemoFeed:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.events: list[dict[str, Any]] = []
        self.scenarios: list[Scenario] = []
        self._mrn = 12000

    def patient(self, name: str, story: str, why: str, *expect: Expect) -> Scenario:
        self._mrn += self.rng.randrange(17, 389)
        scenario = Scenario(self, name, f"MRN{self._mrn:08d}", story, why, list(expect))
        self.scenarios.append(scenario)
        return scenario


# -- the scenarios -----------------------------------------------------------------------------
def build(seed: int = SEED) -> DemoFeed:
    f = DemoFeed(seed)
    _oih_scenarios(f)
    _coprescription_scenarios(f)
    _laxative_scenarios(f)
    _lifecycle_scenarios(f)
    _quiet_opioid_scenarios(f)
    _no_issue_scenarios(f)
    return f


def _oih_scenarios(f: DemoFeed) -> None:
    p = f.patient(
        "oih_classic",
        "58M lumbar radiculopathy on 5 West: PRN oxycodone raised on day 2, back pain went from 4 to 7.",
        "Oxycodone 5 mg q4h PRN (45 MME) raised to 7.5 mg (67.5 MME: +50%, +22.5) after 33 h of exposure; "
        "baseline median 4, median of scores >= 4 h later 6.5-7 (+2); no progression; < 90 MME and one site: warning. "
        "Pain stays high, so the episode stays open.",
        Expect("oih_suspected", "warning", "open", "opened"))
    p.admit(0, "5 West Med-Surg", date(1967, 9, 14))
    p.rx(1, "OXY", OXY_PRN)
    p.rx(1, "SEN", SENNA)
    p.rx(1.5, "APAP", APAP_PRN)
    p.rx(1.5, "ENOX", ENOXAPARIN)
    p.pains([(2, 4), (8, 5), (14, 4), (20.5, 4), (26, 5), (32, 4)], "lower back")
    p.rx(34, "OXY", OXY_PRN, "modify", dose=7.5)
    p.pains([(39, 6), (45, 7), (51, 7), (57.25, 8), (63, 7), (70, 7), (77.5, 6), (84, 7), (91, 7)],
            "lower back")

    p = f.patient(
        "oih_spreading_allodynia",
        "71F lumbar stenosis on 6 South Ortho: morphine ER doubled, pain spread to both legs with allodynia.",
        "Morphine ER 15 mg PO q12h (30 MME) doubled to 60 MME after 27 h; pain median 5 -> 7.5 (+2.5); the second "
        "score after the rise is at a new site ('both legs') with allodynia: high from the start.",
        Expect("oih_suspected", "high", "open", "opened"))
    p.admit(4, "6 South Ortho", date(1954, 11, 2))
    morphine_er = dict(drug="morphine sulfate ER", rxnorm="7052", route="PO", dose=15, dose_unit="mg",
                       frequency_per_day=2)
    p.rx(5, "MER", morphine_er)
    p.rx(5, "SEN", SENNA)
    p.rx(5.5, "APAP", APAP_SCHED)
    p.rx(5.5, "HEP", HEPARIN_SC)
    p.pains([(6, 5), (12, 4), (18, 5), (24.5, 4), (30, 5)], "lower back")
    p.rx(32, "MER", morphine_er, "modify", dose=30)
    p.pain(37, 7, "lower back")
    for h, score in [(43, 8), (49, 8), (56, 7), (62.5, 8), (69, 7), (76, 8)]:
        p.pain(h, score, "both legs", allodynia=True)
    p.pain(83, 7, "lower back")

    p = f.patient(
        "oih_then_escalation_then_reduced",
        "49M chronic pancreatitis flare on 4 East: oxycodone doubled, pain rose, team raised it again; "
        "after pharmacist review it went back to 5 mg.",
        "OIH as in oih_classic (30 -> 60 MME, median 5 -> 7.5) opens a warning; raising to 15 mg q6h while it is "
        "open is opioid_escalation_during_oih (high) and makes the OIH total 90 MME (high); the reduction back to the "
        "pre-escalation 30 MME resolves OIH (dose_reduced) and with it the escalation alert (condition_cleared).",
        Expect("oih_suspected", "high", "resolved", "dose_reduced"),
        Expect("opioid_escalation_during_oih", "high", "resolved", "condition_cleared"))
    p.admit(2, "4 East Medicine", date(1976, 5, 21))
    p.rx(2.5, "OXY", OXY_SCHED)
    p.rx(2.5, "SEN", SENNA)
    p.rx(2.5, "LR", LR)
    p.rx(3, "PANTO", PANTOPRAZOLE)
    p.pains([(3, 5), (9, 4), (15, 5), (21, 5), (27, 4)], "epigastric")
    p.rx(30, "OXY", OXY_SCHED, "modify", dose=10)
    p.pains([(35, 7), (41, 8), (47, 7)], "epigastric")
    p.rx(52, "OXY", OXY_SCHED, "modify", dose=15)
    p.pains([(57, 8), (63, 8), (69, 8)], "epigastric")
    p.rx(72, "OXY", OXY_SCHED, "modify", dose=5)
    p.rx(72.5, "KET", dict(drug="ketamine infusion", route="IV", dose=5, dose_unit="mg/h"))  # NMDA antagonist
    p.pains([(77, 6), (83, 5), (90, 5), (97, 4)], "epigastric")
    p.discharge(101)

    p = f.patient(
        "oih_suppressed_by_progression",
        "62M pancreatic cancer on Oncology 7 East: CT shows new liver metastases, oxycodone ER doubled, pain 4 -> 7.",
        "Escalation and pain rise meet the OIH signature, but disease progression is documented in the window: "
        "rising pain is explained by the disease, so no alert.")
    p.admit(8, "Oncology 7 East", date(1963, 8, 30))
    oxy_er = dict(drug="oxycodone ER", rxnorm="7804", route="PO", dose=10, dose_unit="mg", frequency_per_day=2)
    p.rx(8.5, "OXER", oxy_er)
    p.rx(8.5, "SEN", SENNA)
    p.rx(9, "ONDAN", ONDANSETRON)
    p.rx(9, "ENOX", ENOXAPARIN)
    p.pains([(9, 4), (15, 5), (21, 4), (27, 4)], "abdomen")
    p.update(29, disease_progression=True)
    p.rx(33, "OXER", oxy_er, "modify", dose=20)
    p.pains([(38, 7), (44, 7), (50, 8), (57, 7), (64, 7), (71, 6)], "abdomen")

    p = f.patient(
        "opioid_naive_rising_pain",
        "36F acute pancreatitis on 4 East: pain rising on admission, IV hydromorphone started and doubled 16 h later.",
        "The rise from 80 to 160 MME came after only 16 h of exposure: an opioid-naive start and early titration is "
        "not an escalation, so rising pain does not make OIH. Senna in time: no laxative alert.")
    p.admit(20, "4 East Medicine", date(1989, 12, 7))
    p.rx(20.5, "NS", NS_1000)
    p.rx(20.5, "APAP", APAP_IV)
    p.rx(20.5, "ONDAN", ONDANSETRON)
    p.pains([(21, 5), (27, 6)], "epigastric")
    hydromorphone_iv = dict(drug="hydromorphone", rxnorm="3423", route="IV", dose=0.5, dose_unit="mg",
                            frequency_per_day=8, prn=True)
    p.rx(30, "HMIV", hydromorphone_iv)
    p.rx(31, "SEN", SENNA)
    p.pains([(32, 6), (38, 7)], "epigastric")
    p.rx(46, "HMIV", hydromorphone_iv, "modify", dose=1)
    p.pains([(51, 8), (57, 8), (63, 7), (70, 6), (77, 5), (84, 4)], "epigastric")
    p.discharge(96)

    p = f.patient(
        "opioid_rotation_stable_pain",
        "57M failed back syndrome on 5 West: morphine rotated to methadone, pain unchanged.",
        "Morphine stopped and methadone started 30 min later is a rotation (computed MME 40 -> 70.5 is not an "
        "escalation); pain stable, so not even the info note. PEG in place.")
    p.admit(3, "5 West Med-Surg", date(1968, 4, 11))
    morphine_po = dict(drug="morphine sulfate IR", rxnorm="7052", route="PO", dose=10, dose_unit="mg",
                       frequency_per_day=4)
    p.rx(3.5, "MOR", morphine_po)
    p.rx(3.5, "PEG", PEG)
    p.rx(4, "KCL", KCL)
    p.pains([(4, 5), (10, 5), (16, 4), (22, 5), (28, 5)], "lower back")
    p.stop(30, "MOR", morphine_po)
    p.rx(30.5, "MTD", dict(drug="methadone", rxnorm="6813", route="PO", dose=5, dose_unit="mg", frequency_per_day=3))
    p.pains([(35, 5), (41, 4), (47, 5), (54, 5), (61, 4), (68, 5)], "lower back")


def _coprescription_scenarios(f: DemoFeed) -> None:
    p = f.patient(
        "benzo_opioid_ward_age_64",
        "64F (birthday in July) with a hip contusion on 5 West: PRN oxycodone plus her scheduled home lorazepam.",
        "Opioid + benzodiazepine active on an unmonitored ward, one side scheduled, age 64: high (not critical).",
        Expect("opioid_benzodiazepine", "high", "open", "opened"))
    p.admit(10, "5 West Med-Surg", date(1961, 7, 19))
    p.rx(11, "OXY", OXY_PRN)
    p.rx(11, "SEN", SENNA)
    p.rx(11.5, "APAP", APAP_PRN)
    p.rx(14, "LZP", LORAZEPAM, frequency_per_day=2, indication="generalized anxiety disorder")
    p.rx(14, "ENOX", ENOXAPARIN)
    p.rx(14.5, "AML", dict(drug="amlodipine", route="PO", dose=5, dose_unit="mg", frequency_per_day=1))
    p.pain_series(12, 60, 4, "left hip")

    p = f.patient(
        "benzo_opioid_ward_age_65",
        "65M (turned 65 in November) with rib fractures on 6 North: PRN oxycodone plus scheduled alprazolam.",
        "The same combination on an unmonitored ward at 65: critical.",
        Expect("opioid_benzodiazepine", "critical", "open", "opened"))
    p.admit(15, "6 North Med-Surg", date(1960, 11, 2))
    p.rx(15.5, "OXY", OXY_PRN)
    p.rx(15.5, "SEN", SENNA)
    p.rx(16, "ALP", dict(drug="alprazolam", rxnorm="596", route="PO", dose=0.25, dose_unit="mg", frequency_per_day=3))
    p.rx(16, "ENOX", ENOXAPARIN)
    p.rx(16.5, "LIDO", dict(drug="lidocaine 4% patch", route="topical", dose=1, dose_unit="patch",
                            frequency_per_day=1))
    p.pain_series(16, 60, 5, "right chest wall")

    p = f.patient(
        "benzo_opioid_icu_info",
        "59M septic shock, intubated in MICU: fentanyl and midazolam infusions, gabapentin per tube; extubated day 2.",
        "Sedation with an opioid and a benzodiazepine on a monitored unit is routine: info only (even with the "
        "gabapentinoid; opioid + gabapentinoid on a monitored unit is no alert). Midazolam stopped: resolved.",
        Expect("opioid_benzodiazepine", "info", "resolved", "condition_cleared"))
    p.admit(0, "MICU", date(1966, 10, 3), monitored=True)
    fentanyl_drip = dict(drug="fentanyl citrate infusion", rxnorm="4337", route="IV", dose=50, dose_unit="mcg/h")
    midazolam_drip = dict(drug="midazolam infusion", rxnorm="6960", route="IV", dose=2, dose_unit="mg/h")
    p.rx(0.5, "FEN", fentanyl_drip)
    p.rx(0.5, "MDZ", midazolam_drip)
    p.rx(0.5, "VANC", VANCOMYCIN)
    p.rx(0.5, "PIPTAZ", dict(drug="piperacillin-tazobactam", route="IV", dose=4.5, dose_unit="g",
                             frequency_per_day=4))
    p.rx(0.75, "NE", dict(drug="norepinephrine infusion", route="IV", dose=8, dose_unit="mcg/min",
                          frequency_per_day=1440))
    p.rx(1, "NS", NS_BOLUS)
    p.rx(1, "PPI", PANTOPRAZOLE_IV)
    p.rx(1.5, "HEP", HEPARIN_SC)
    p.rx(6, "GAB", GABAPENTIN, route="NG tube")
    p.rx(8, "PEG", PEG, route="NG tube")
    p.rx(12, "INS", INSULIN_DRIP)
    p.stop(40, "MDZ", midazolam_drip)
    p.stop(44, "FEN", fentanyl_drip)
    p.stop(44, "NE", dict(drug="norepinephrine infusion", route="IV"))
    p.transfer(50, "Step-Down Unit")

    p = f.patient(
        "icu_to_ward_transfer",
        "72M after hip ORIF in SICU with alcohol withdrawal: IV hydromorphone PRN and scheduled lorazepam; "
        "transferred to 4 North Ortho on both.",
        "Info while in SICU (monitored); the transfer to an unmonitored ward with both still active raises the same "
        "alert to critical (age 72) at the transfer.",
        Expect("opioid_benzodiazepine", "critical", "updated", "severity_increased"))
    p.admit(1, "SICU", date(1953, 6, 25))
    p.rx(1.5, "HMIV", dict(drug="hydromorphone", rxnorm="3423", route="IV", dose=0.5, dose_unit="mg",
                           frequency_per_day=8, prn=True))
    p.rx(2, "LZP", LORAZEPAM, route="IV", dose=1, frequency_per_day=4, indication="alcohol withdrawal (CIWA)")
    p.rx(2, "SEN", SENNA)
    p.rx(2, "CEFAZ", CEFAZOLIN)
    p.rx(2.5, "THI", dict(drug="thiamine", route="IV", dose=100, dose_unit="mg", frequency_per_day=1))
    p.rx(3, "ENOX", ENOXAPARIN)
    p.pain_series(3, 26, 5, "right hip")
    p.transfer(28, "4 North Ortho")
    p.pain_series(30, 72, 4, "right hip")

    p = f.patient(
        "gabapentinoid_opioid_duplicate_delivery",
        "53M total knee arthroplasty POD1 on 4 North Ortho: PRN tramadol plus gabapentin; the gabapentin order and "
        "one pain score were delivered twice.",
        "Opioid + gabapentinoid on an unmonitored ward, age 53: warning. The re-delivered events (same event_id) "
        "change nothing: still one episode.",
        Expect("opioid_gabapentinoid", "warning", "open", "opened"))
    p.admit(5, "4 North Ortho", date(1973, 2, 9))
    p.rx(6, "TRAM", dict(drug="tramadol", rxnorm="10689", route="PO", dose=50, dose_unit="mg", frequency_per_day=4,
                         prn=True))
    p.rx(6, "SEN", SENNA)
    p.rx(6, "APAP", APAP_SCHED)
    p.rx(6, "ENOX", ENOXAPARIN)
    p.rx(6.5, "CEFAZ", CEFAZOLIN, end_at=(START + timedelta(hours=30)).isoformat())
    p.duplicate(p.rx(7, "GAB", GABAPENTIN))
    p.pain_series(8, 40, 5, "left knee")
    p.duplicate(p.pain(42, 4, "left knee"))
    p.pain_series(48, 66, 4, "left knee")

    p = f.patient(
        "gabapentin_enacarbil_combination_product",
        "78F on home gabapentin enacarbil (Horizant) for restless legs, admitted with a wrist fracture: "
        "oxycodone-acetaminophen 5/325 PRN.",
        "Gabapentin enacarbil is a gabapentinoid and oxycodone-acetaminophen is an opioid (combination product, "
        "5 mg per tablet): on a ward at 78, high.",
        Expect("opioid_gabapentinoid", "high", "open", "opened"))
    p.admit(22, "5 West Med-Surg", date(1947, 8, 16))
    p.rx(22.5, "HZ", dict(drug="gabapentin enacarbil ER", route="PO", dose=600, dose_unit="mg", frequency_per_day=1))
    p.rx(23, "PERC", dict(drug="oxycodone-acetaminophen 5-325 mg tablet", rxnorm="7804", route="PO", dose=1,
                          dose_unit="tablet", strength=5, strength_unit="mg", frequency_per_day=4, prn=True))
    p.rx(23, "PEG", PEG)
    p.rx(23.5, "LEVO", dict(drug="levothyroxine", route="PO", dose=75, dose_unit="mcg", frequency_per_day=1))
    p.pain_series(24, 72, 4, "left wrist")

    p = f.patient(
        "triple_opioid_benzo_gabapentinoid",
        "80M with diabetic neuropathy on 5 West (home clonazepam and pregabalin) given PRN oxycodone for a foot ulcer.",
        "Opioid + benzodiazepine + gabapentinoid on an unmonitored ward: critical on the benzodiazepine alert "
        "(triple); opioid + gabapentinoid at 80: high.",
        Expect("opioid_benzodiazepine", "critical", "open", "opened"),
        Expect("opioid_gabapentinoid", "high", "open", "opened"))
    p.admit(12, "5 West Med-Surg", date(1945, 12, 28))
    p.rx(12.5, "CLZ", dict(drug="clonazepam", rxnorm="2598", route="PO", dose=0.5, dose_unit="mg",
                           frequency_per_day=2))
    p.rx(12.5, "PGB", dict(drug="pregabalin", rxnorm="187832", route="PO", dose=75, dose_unit="mg",
                           frequency_per_day=2))
    p.rx(12.5, "GLAR", GLARGINE)
    p.rx(13, "VANC", VANCOMYCIN)
    p.rx(14, "OXY", OXY_PRN)
    p.rx(14, "SEN", SENNA)
    p.pain_series(15, 66, 5, "left foot")

    p = f.patient(
        "prn_only_combination",
        "45F renal colic on 3 East: PRN oxycodone and PRN lorazepam for anxiety.",
        "Both sides PRN only: one step lower than high, so warning.",
        Expect("opioid_benzodiazepine", "warning", "open", "opened"))
    p.admit(20, "3 East Medicine", date(1980, 10, 13))
    p.rx(20, "OXY", OXY_PRN)
    p.rx(20, "SEN", SENNA)
    p.rx(20.5, "NS", NS_1000)
    p.rx(20.5, "ONDAN", ONDANSETRON)
    p.rx(21, "TAMS", dict(drug="tamsulosin", route="PO", dose=0.4, dose_unit="mg", frequency_per_day=1))
    p.rx(21, "KETO", dict(drug="ketorolac", route="IV", dose=15, dose_unit="mg", frequency_per_day=4))
    p.rx(22, "LZP", LORAZEPAM, frequency_per_day=4, prn=True)
    p.pain_series(21, 60, 5, "right flank")

    p = f.patient(
        "comfort_care_suppresses",
        "84M metastatic lung cancer on Oncology 7 East: IV morphine PRN with his scheduled lorazepam; family meeting "
        "on day 3 moves him to comfort care.",
        "Opioid + benzodiazepine on a ward at 84: critical, until comfort care is documented, which suppresses the "
        "co-prescription alerts and resolves the open one (reason comfort_care). The PRN lorazepam added afterwards "
        "raises nothing.",
        Expect("opioid_benzodiazepine", "critical", "resolved", "comfort_care"))
    p.admit(30, "Oncology 7 East", date(1941, 9, 5))
    p.rx(30.5, "MIV", dict(drug="morphine sulfate", rxnorm="7052", route="IV", dose=2, dose_max=4, dose_unit="mg",
                           frequency_per_day=12, prn=True))
    p.rx(30.5, "LZP", LORAZEPAM, frequency_per_day=2)
    p.rx(30.5, "SEN", SENNA)
    p.rx(31, "DEX", dict(drug="dexamethasone", route="PO", dose=4, dose_unit="mg", frequency_per_day=2))
    p.pain_series(31, 50, 5, "chest")
    p.update(52, comfort_care=True)
    p.rx(53, "LZPPRN", LORAZEPAM, frequency_per_day=6, prn=True, indication="dyspnea-related anxiety")
    p.stop(53, "DEX", dict(drug="dexamethasone", route="PO"))
    p.pain_series(54, 86, 4, "chest")


def _laxative_scenarios(f: DemoFeed) -> None:
    p = f.patient(
        "missing_laxative_deadline_only",
        "70F with a vertebral compression fracture on 6 North: scheduled oxycodone, no bowel regimen, "
        "and no further charting.",
        "Scheduled opioid with no scheduled laxative: the 24 h deadline fires on event time carried by other "
        "patients' events (this patient has none after the order). Age 70: high.",
        Expect("missing_laxative", "high", "open", "opened"))
    p.admit(49, "6 North Med-Surg", date(1955, 4, 3))
    p.rx(50, "OXY", OXY_SCHED)

    p = f.patient(
        "laxative_added_in_time",
        "55M cellulitis with abscess on 5 West: PRN oral hydromorphone; PEG 3350 added 10 h later.",
        "A scheduled bowel regimen within the 24 h grace period cancels the clock: no alert.")
    p.admit(39, "5 West Med-Surg", date(1970, 6, 6))
    p.rx(40, "HMPO", dict(drug="hydromorphone", rxnorm="3423", route="PO", dose=2, dose_unit="mg",
                          frequency_per_day=6, prn=True))
    p.rx(40, "VANC", VANCOMYCIN)
    p.rx(40.5, "APAP", APAP_PRN)
    p.rx(50, "PEG", PEG)
    p.pain_series(41, 76, 5, "left thigh")

    p = f.patient(
        "docusate_only_then_senna",
        "68F with a pelvic fracture on 3 East: scheduled oxycodone with docusate and PRN bisacodyl; senna added "
        "after the pharmacist's call.",
        "Docusate alone is a softener, not a regimen, and PRN bisacodyl is not scheduled: missing laxative at 24 h, "
        "high at 68; senna ordered later resolves it (condition_cleared).",
        Expect("missing_laxative", "high", "resolved", "condition_cleared"))
    p.admit(25, "3 East Medicine", date(1957, 8, 8))
    p.rx(26, "OXY", OXY_SCHED)
    p.rx(27, "DOC", DOCUSATE)
    p.rx(27, "BIS", BISACODYL_PRN)
    p.rx(27, "ENOX", ENOXAPARIN)
    p.pain_series(28, 60, 5, "pelvis")
    p.rx(62, "SEN", SENNA)
    p.pain_series(64, 88, 4, "pelvis")


def _lifecycle_scenarios(f: DemoFeed) -> None:
    p = f.patient(
        "modify_then_discontinue",
        "60M lumbar muscle spasm on 4 North Ortho: PRN oxycodone with diazepam, diazepam reduced then stopped.",
        "Opioid + benzodiazepine on a ward at 60: high. The dose reduction (modify) keeps the same condition, so no "
        "new record; the discontinue clears it (condition_cleared).",
        Expect("opioid_benzodiazepine", "high", "resolved", "condition_cleared"))
    p.admit(8, "4 North Ortho", date(1965, 5, 5))
    p.rx(8, "OXY", OXY_PRN)
    p.rx(8, "SEN", SENNA)
    diazepam = dict(drug="diazepam", rxnorm="3322", route="PO", dose=5, dose_unit="mg", frequency_per_day=3)
    p.rx(9, "DZP", diazepam)
    p.rx(9.5, "APAP", APAP_SCHED)
    p.pain_series(10, 70, 5, "lower back")
    p.rx(20, "DZP", diazepam, "modify", dose=2)
    p.stop(33, "DZP", diazepam)
    p.discharge(75)

    p = f.patient(
        "entered_in_error_retracts",
        "50F gastroenteritis on 3 East: a lorazepam order meant for another patient is entered in error.",
        "Oxycodone + lorazepam opens high; the order is retracted as entered in error 40 min later, so the alert "
        "is resolved as retracted.",
        Expect("opioid_benzodiazepine", "high", "resolved", "retracted"))
    p.admit(59, "3 East Medicine", date(1975, 3, 27))
    p.rx(60, "OXY", OXY_PRN)
    p.rx(60, "SEN", SENNA)
    p.rx(60, "NS", NS_1000)
    p.rx(60.5, "ONDAN", ONDANSETRON)
    p.rx(61, "KCL", KCL_IV)
    p.rx(62, "LZP", LORAZEPAM, dose=1)
    p.rx(62.67, "LZP", LORAZEPAM, "entered_in_error")
    p.pain_series(63, 100, 3, "abdomen")

    p = f.patient(
        "discharge_resolves_open_alerts",
        "67M with a humerus fracture on 6 North: scheduled oxycodone plus lorazepam and no bowel regimen, "
        "discharged home on day 2.",
        "Opioid + benzodiazepine on a ward at 67: critical; no scheduled laxative after 24 h: high. The discharge "
        "resolves both (reason discharged).",
        Expect("opioid_benzodiazepine", "critical", "resolved", "discharged"),
        Expect("missing_laxative", "high", "resolved", "discharged"))
    p.admit(4, "6 North Med-Surg", date(1958, 10, 20))
    p.rx(5, "OXY", OXY_SCHED)
    p.rx(5, "APAP", APAP_SCHED)
    p.rx(5.5, "ENOX", ENOXAPARIN)
    p.rx(5.5, "PANTO", PANTOPRAZOLE)
    p.rx(6, "LZP", LORAZEPAM, frequency_per_day=2)
    p.pain_series(6, 40, 4, "left arm")
    p.discharge(44)


def _quiet_opioid_scenarios(f: DemoFeed) -> None:
    p = f.patient(
        "look_alikes_with_opioid",
        "41M ankle ORIF on 4 North Ortho: PRN oxycodone with senna, methocarbamol, hydroxyzine and loratadine.",
        "Methocarbamol (muscle relaxant), hydroxyzine (antihistamine) and loratadine (not lorazepam) are not "
        "benzodiazepines or gabapentinoids: nothing to combine; senna in place.")
    p.admit(28, "4 North Ortho", date(1984, 7, 30))
    p.rx(28.5, "OXY", OXY_PRN)
    p.rx(28.5, "SEN", SENNA)
    p.rx(29, "METHO", dict(drug="methocarbamol", route="PO", dose=750, dose_unit="mg", frequency_per_day=3))
    p.rx(29, "HYDX", dict(drug="hydroxyzine HCl", route="PO", dose=25, dose_unit="mg", frequency_per_day=4,
                          prn=True))
    p.rx(29, "LORA", dict(drug="loratadine", route="PO", dose=10, dose_unit="mg", frequency_per_day=1))
    p.rx(29.5, "CEFAZ", CEFAZOLIN)
    p.pain_series(30, 90, 4, "right ankle")
    p.discharge(94)

    p = f.patient(
        "look_alikes_no_opioid",
        "38F lupus flare on 4 East: hydroxychloroquine, oxybutynin and prednisone.",
        "Hydroxychloroquine is not hydrocodone and oxybutynin is not oxycodone: no opioid, no alert.")
    p.admit(14, "4 East Medicine", date(1987, 11, 19))
    p.rx(14.5, "HCQ", dict(drug="hydroxychloroquine", route="PO", dose=200, dose_unit="mg", frequency_per_day=2))
    p.rx(14.5, "OXYB", dict(drug="oxybutynin chloride", route="PO", dose=5, dose_unit="mg", frequency_per_day=2))
    p.rx(14.5, "PRED", dict(drug="prednisone", route="PO", dose=40, dose_unit="mg", frequency_per_day=1))
    p.rx(15, "PANTO", PANTOPRAZOLE)
    p.rx(15, "ENOX", ENOXAPARIN)
    p.rx(39, "PRED", dict(drug="prednisone", route="PO", dose=30, dose_unit="mg", frequency_per_day=1), "modify")
    p.discharge(80)

    p = f.patient(
        "fentanyl_patch_stable",
        "66F metastatic breast cancer on Oncology 7 East: fentanyl 25 mcg/h patch with PRN oxycodone, PEG daily.",
        "Stable regimen (patch 60 MME + PRN 45 MME) with stable pain and a scheduled laxative: no alert.")
    p.admit(2, "Oncology 7 East", date(1959, 12, 1))
    p.rx(2, "FENP", dict(drug="fentanyl transdermal patch", rxnorm="4337", route="transdermal", dose=1,
                         dose_unit="patch", strength=25, strength_unit="mcg/h", frequency_per_day=1 / 3))
    p.rx(2, "OXY", OXY_PRN)
    p.rx(2, "PEG", PEG)
    p.rx(2.5, "ONDAN", ONDANSETRON)
    p.rx(2.5, "DEX", dict(drug="dexamethasone", route="PO", dose=4, dose_unit="mg", frequency_per_day=1))
    p.pain_series(3, 80, 4, "right hip")

    p = f.patient(
        "pca_to_oral_rotation",
        "61F total hip arthroplasty: PACU then 4 North Ortho, hydromorphone PCA switched to oral oxycodone POD1.",
        "A downward switch (PCA counted at its maximum, then oxycodone 5-10 mg q4h PRN) with stable pain and senna: "
        "no alert.")
    p.admit(24, "PACU", date(1964, 9, 9))
    pca = dict(drug="hydromorphone PCA", rxnorm="3423", route="IV PCA", dose=0.2, dose_unit="mg",
               frequency_per_day=144, prn=True)
    p.rx(24.5, "PCA", pca)
    p.rx(24.5, "SEN", SENNA)
    p.rx(24.5, "CEFAZ", CEFAZOLIN, end_at=(START + timedelta(hours=48)).isoformat())
    p.rx(25, "APAP", APAP_SCHED)
    p.rx(25, "ENOX", ENOXAPARIN)
    p.transfer(27, "4 North Ortho")
    p.pain_series(25, 46, 4, "left hip")
    p.stop(48, "PCA", pca)
    p.rx(48, "OXY", OXY_PRN, dose_max=10)
    p.pain_series(50, 96, 3, "left hip")


def _no_issue_scenarios(f: DemoFeed) -> None:
    p = f.patient("no_issue_pneumonia_elderly", "91F community-acquired pneumonia on 5 West.",
                  "Antibiotics, fluids, anticoagulation, vaccine: nothing monitored.")
    p.admit(0, "5 West Med-Surg", date(1934, 6, 1))
    p.rx(0.5, "CTX", CEFTRIAXONE)
    p.rx(0.5, "AZ", dict(drug="azithromycin", route="IV", dose=500, dose_unit="mg", frequency_per_day=1))
    p.rx(0.5, "NS", NS_1000)
    p.rx(1, "ENOX", ENOXAPARIN)
    p.rx(1, "APAP", APAP_PRN)
    p.rx(30, "FLU", FLU_VACCINE)
    p.rx(50, "AZ", dict(drug="azithromycin", route="PO", dose=250, dose_unit="mg", frequency_per_day=1), "modify")
    p.discharge(75)

    p = f.patient("no_issue_cellulitis", "47M left leg cellulitis on 6 North, pain managed with acetaminophen.",
                  "Pain scores without any opioid: no rule applies.")
    p.admit(6, "6 North Med-Surg", date(1979, 1, 23))
    p.rx(6.5, "VANC", VANCOMYCIN)
    p.rx(6.5, "APAP", APAP_PRN)
    p.rx(7, "HEP", HEPARIN_SC)
    p.pain_series(7, 46, 4, "left lower leg")
    p.stop(56, "VANC", VANCOMYCIN)
    p.rx(56, "CEPH", dict(drug="cephalexin", route="PO", dose=500, dose_unit="mg", frequency_per_day=4))
    p.discharge(60)

    p = f.patient("no_issue_dka", "34F diabetic ketoacidosis in MICU, then step-down.",
                  "Insulin infusion, potassium and fluids: nothing monitored.")
    p.admit(3, "MICU", date(1991, 8, 12), monitored=True)
    p.rx(3.5, "NS", NS_BOLUS)
    p.rx(3.5, "INS", INSULIN_DRIP)
    p.rx(4, "KCL", KCL_IV)
    p.rx(4, "NS2", NS_1000)
    p.rx(9, "KCL2", KCL_IV)
    p.stop(20, "INS", INSULIN_DRIP)
    p.rx(20, "GLAR", GLARGINE)
    p.rx(20, "LIS", LISPRO)
    p.transfer(26, "Step-Down Unit")
    p.rx(30, "ENOX", ENOXAPARIN)
    p.discharge(70)

    p = f.patient("no_issue_heart_failure", "78M decompensated heart failure on 4 Tele: diuresis and MgSO4.",
                  "'MgSO4' (magnesium sulfate, given scheduled) is not 'MSO4' (morphine): no opioid, no laxative "
                  "deadline.")
    p.admit(9, "4 Tele", date(1948, 2, 17))
    p.rx(9.5, "FURO", FUROSEMIDE)
    p.rx(9.5, "KCL", KCL)
    p.rx(10, "MG", dict(drug="MgSO4", route="IV", dose=2, dose_unit="g", frequency_per_day=1))
    p.rx(10, "METO", dict(drug="metoprolol succinate", route="PO", dose=25, dose_unit="mg", frequency_per_day=1))
    p.rx(10, "ENOX", ENOXAPARIN)
    p.rx(58, "FURO", FUROSEMIDE, "modify", route="PO", dose=40, frequency_per_day=1)
    p.stop(58, "MG", dict(drug="MgSO4", route="IV"))
    p.discharge(100)

    p = f.patient("no_issue_pyelonephritis", "31F pyelonephritis on 3 East.",
                  "Ceftriaxone, fluids and ondansetron: nothing monitored.")
    p.admit(33, "3 East Medicine", date(1994, 9, 30))
    p.rx(33.5, "CTX", CEFTRIAXONE)
    p.rx(33.5, "NS", NS_1000)
    p.rx(33.5, "ONDAN", ONDANSETRON)
    p.rx(34, "APAP", APAP_PRN)
    p.discharge(82)

    p = f.patient("no_issue_gi_bleed", "69M upper GI bleed in step-down: IV pantoprazole and fluids.",
                  "Nothing monitored; monitoring of the unit is irrelevant without monitored drugs.")
    p.admit(18, "SDU 2", date(1956, 7, 4))
    p.rx(18.5, "PPI", PANTOPRAZOLE_IV)
    p.rx(18.5, "NS", NS_BOLUS)
    p.rx(19, "OCT", dict(drug="octreotide infusion", route="IV", dose=50, dose_unit="mcg/h"))
    p.rx(19, "CTX", CEFTRIAXONE)
    p.stop(60, "OCT", dict(drug="octreotide infusion", route="IV"))
    p.rx(60, "PPI", PANTOPRAZOLE, "modify")
    p.transfer(62, "4 East Medicine")

    p = f.patient("no_issue_pulmonary_embolism", "53F pulmonary embolism on 6 North: heparin infusion to apixaban.",
                  "Anticoagulation only: nothing monitored.")
    p.admit(44, "6 North Med-Surg", date(1972, 12, 15))
    p.rx(44.5, "HEPD", HEPARIN_DRIP)
    p.rx(44.5, "NS", NS_1000)
    p.rx(56, "HEPD", HEPARIN_DRIP, "modify", dose=1500)
    p.stop(80, "HEPD", HEPARIN_DRIP)
    p.rx(80, "APIX", dict(drug="apixaban", route="PO", dose=10, dose_unit="mg", frequency_per_day=2))

    p = f.patient("no_issue_copd", "93M COPD exacerbation on 5 West.",
                  "Steroid, nebulisers, antibiotic, vaccine: nothing monitored.")
    p.admit(26, "5 West Med-Surg", date(1932, 5, 27))
    p.rx(26.5, "MPRED", dict(drug="methylprednisolone", route="IV", dose=40, dose_unit="mg", frequency_per_day=2))
    p.rx(26.5, "DUO", dict(drug="ipratropium-albuterol nebulizer", route="inhalation", dose=3, dose_unit="mL",
                           frequency_per_day=4))
    p.rx(27, "AZ", dict(drug="azithromycin", route="PO", dose=500, dose_unit="mg", frequency_per_day=1))
    p.rx(27, "HEP", HEPARIN_SC)
    p.rx(40, "FLU", FLU_VACCINE)
    p.rx(74, "MPRED", dict(drug="prednisone", route="PO", dose=40, dose_unit="mg", frequency_per_day=1), "modify")

    p = f.patient("no_issue_lap_chole_non_opioid", "43F laparoscopic cholecystectomy, opioid-sparing analgesia.",
                  "Acetaminophen and ketorolac only (no opioid): pain scores alone raise nothing.")
    p.admit(52, "PACU", date(1982, 4, 14))
    p.rx(52.5, "CEFAZ", CEFAZOLIN, one_time=True, frequency_per_day=None)
    p.rx(52.5, "APAP", APAP_IV)
    p.rx(52.5, "KETO", dict(drug="ketorolac", route="IV", dose=15, dose_unit="mg", frequency_per_day=4))
    p.rx(53, "ONDAN", ONDANSETRON)
    p.transfer(55, "3 East Medicine")
    p.pain_series(53, 75, 3, "abdomen")
    p.discharge(78)

    p = f.patient("no_issue_neutropenic_fever", "57M neutropenic fever after chemotherapy on Oncology 7 East.",
                  "Cefepime, vancomycin, filgrastim: nothing monitored.")
    p.admit(64, "Oncology 7 East", date(1968, 3, 31))
    p.rx(64.5, "CEFEP", dict(drug="cefepime", route="IV", dose=2, dose_unit="g", frequency_per_day=3))
    p.rx(64.5, "VANC", VANCOMYCIN)
    p.rx(65, "FIL", dict(drug="filgrastim", route="SC", dose=1, dose_unit="vial", strength=480, strength_unit="mcg",
                         frequency_per_day=1))
    p.rx(65, "NS", NS_1000)
    p.rx(65, "ONDAN", ONDANSETRON)
    p.rx(90, "VANC", VANCOMYCIN, "discontinue")

    p = f.patient("no_issue_hypokalemia", "48M hypokalemia and alcohol use on 4 East.",
                  "Potassium, magnesium oxide, thiamine, folate: nothing monitored.")
    p.admit(70, "4 East Medicine", date(1977, 10, 10))
    p.rx(70.5, "KCL", KCL_IV)
    p.rx(70.5, "KCLPO", KCL)
    p.rx(71, "MGOX", dict(drug="magnesium oxide", route="PO", dose=400, dose_unit="mg", frequency_per_day=2))
    p.rx(71, "THI", dict(drug="thiamine", route="PO", dose=100, dose_unit="mg", frequency_per_day=1))
    p.rx(71, "FOL", dict(drug="folic acid", route="PO", dose=1, dose_unit="mg", frequency_per_day=1))
    p.rx(78, "KCL2", KCL_IV)
    p.discharge(108)

    p = f.patient("no_issue_stroke_workup", "74F TIA workup on 6 North.",
                  "Antiplatelet, statin, fluids: nothing monitored.")
    p.admit(85, "6 North Med-Surg", date(1951, 11, 11))
    p.rx(85.5, "ASA", dict(drug="aspirin", route="PO", dose=81, dose_unit="mg", frequency_per_day=1))
    p.rx(85.5, "ATOR", dict(drug="atorvastatin", route="PO", dose=80, dose_unit="mg", frequency_per_day=1))
    p.rx(86, "NS", NS_1000)
    p.rx(86, "HEP", HEPARIN_SC)
    p.rx(110, "CLOP", dict(drug="clopidogrel", route="PO", dose=75, dose_unit="mg", frequency_per_day=1))


# -- output ------------------------------------------------------------------------------------
def _sort_key(event: dict[str, Any]) -> tuple[str, str]:
    return (event["occurred_at"], event["event_id"])  # one offset throughout: text order is time order


def render(seed: int = SEED) -> tuple[str, str]:
    """The two files' contents: (feed NDJSON, expected alerts JSON)."""
    feed = build(seed)
    events = sorted(feed.events, key=_sort_key)
    feed_text = "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)
    episodes = sorted(
        ({"patient_id": s.patient_id, "scenario": s.name, **e.__dict__} for s in feed.scenarios for e in s.expect),
        key=lambda e: (e["patient_id"], e["kind"]),
    )
    expected = {
        "description": "Alert episodes the demo feed must produce under the default settings (cdc-2022), derived "
                       "from the clinical rules (clinical-rules.md); one entry per episode (grouped by alert_id), "
                       "final_* from the episode's last record. Scenarios without episodes must raise nothing.",
        "feed": FEED_NAME,
        "episodes": episodes,
        "scenarios": [
            {"scenario": s.name, "patient_id": s.patient_id, "story": s.story,
             "expected_kinds": sorted(e.kind for e in s.expect), "why": s.why}
            for s in sorted(feed.scenarios, key=lambda s: s.patient_id)
        ],
    }
    return feed_text, json.dumps(expected, indent=2, ensure_ascii=False) + "\n"


def write_demo(out_dir: str | Path, seed: int = SEED) -> tuple[Path, Path]:
    """Write ``feed.ndjson`` and ``expected_alerts.json`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    feed_text, expected_text = render(seed)
    feed_path, expected_path = out / FEED_NAME, out / EXPECTED_NAME
    feed_path.write_text(feed_text, encoding="utf-8", newline="\n")
    expected_path.write_text(expected_text, encoding="utf-8", newline="\n")
    return feed_path, expected_path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path(__file__).parent
    feed_path, expected_path = write_demo(out_dir)
    print(f"wrote {feed_path} and {expected_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
