"""What every detector is given: the rules, the knowledge, and the moment being judged."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from ..events import AnyEvent
from ..knowledge import DrugCatalogue, FactorSet, MmeTotal, load_care_units
from ..settings import RuleSettings
from .state import ANY_CLASS, ActiveOrders, PatientState, of_class


@dataclass(frozen=True, slots=True)
class ClinicalRules:
    """Settings plus the knowledge they select: built once, shared by every patient."""

    settings: RuleSettings
    catalogue: DrugCatalogue
    factors: FactorSet
    care_units: object  # has ``is_monitored(unit) -> bool | None``
    # Durations in seconds, read on hot paths (several times per event): derived once from
    # the settings, which are frozen, so they can never disagree with them.
    window: float = field(init=False, repr=False, compare=False)
    one_time_active: float = field(init=False, repr=False, compare=False)
    laxative_grace: float = field(init=False, repr=False, compare=False)
    patient_idle_ttl: float = field(init=False, repr=False, compare=False)
    rotation_window: float = field(init=False, repr=False, compare=False)
    oih_min_exposure: float = field(init=False, repr=False, compare=False)
    oih_pain_delay: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        settings = self.settings
        for name, duration in (("window", settings.oih_window), ("one_time_active", settings.one_time_active),
                               ("laxative_grace", settings.laxative_grace),
                               ("patient_idle_ttl", settings.patient_idle_ttl),
                               ("rotation_window", settings.rotation_window),
                               ("oih_min_exposure", settings.oih_min_exposure),
                               ("oih_pain_delay", settings.oih_pain_delay)):
            object.__setattr__(self, name, duration.total_seconds())  # frozen dataclass

    @classmethod
    def from_settings(cls, settings: RuleSettings | None = None, care_units_path: str | None = None) -> "ClinicalRules":
        settings = settings or RuleSettings()
        care_units_path = care_units_path or settings.care_units_file
        return cls(
            settings=settings,
            catalogue=DrugCatalogue.default(),
            factors=FactorSet.named(settings.factor_set),
            care_units=load_care_units(care_units_path) if care_units_path else load_care_units(),
        )


@dataclass(slots=True)
class Moment:
    """The patient at one event time: derived context and what triggered the look.

    ``active`` is every order active at ``t`` with its version in force, found once for
    all the detectors (each used to scan the orders for its classes again). A moment
    therefore describes the state as it was when built: judge it before orders change.
    """

    t: float
    age: int | None
    elderly: bool
    monitored: bool
    active: ActiveOrders
    flags: list[str] = field(default_factory=list)
    trigger: AnyEvent | None = None
    mme_before: MmeTotal | None = None
    retracted_event_ids: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        state: PatientState,
        t: float,
        rules: ClinicalRules,
        trigger: AnyEvent | None = None,
        mme_before: MmeTotal | None = None,
        retracted_event_ids: frozenset[str] = frozenset(),
    ) -> "Moment":
        flags: list[str] = []
        age = age_in_years(state.birth_date, t + state.utc_offset) if state.birth_date else None
        if age is None:
            flags.append("age_unknown")
        monitored = state.monitored_explicit
        if monitored is None:
            monitored = rules.care_units.is_monitored(state.unit)  # type: ignore[attr-defined]
        if monitored is None:
            flags.append("monitoring_unknown")
        return cls(
            t=t,
            age=age,
            elderly=age is not None and age >= rules.settings.elderly_age,
            monitored=bool(monitored),
            active=state.active_versions(t, ANY_CLASS),
            flags=flags,
            trigger=trigger,
            mme_before=mme_before,
            retracted_event_ids=retracted_event_ids,
        )

    def active_of(self, flag: int) -> ActiveOrders:
        """Orders of a class active at ``t`` with the version in force (as
        :meth:`PatientState.active_versions` at ``t``)."""
        return of_class(self.active, flag)


def age_in_years(birth: date, t: float) -> int:
    """Completed years of age on the date of ``t`` (birthday counts from its day); pass a
    time shifted by the hospital's UTC offset to count on the local date."""
    year, month, day = _calendar_date(int(t // _DAY))
    return year - birth.year - ((month, day) < (birth.month, birth.day))


_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=1024)
def _calendar_date(day: int) -> tuple[int, int, int]:
    """(year, month, day) of the UTC date ``day`` days after 1970-01-01 (POSIX days have
    86,400 s, so ``t // 86400`` is the date :meth:`datetime.fromtimestamp` would give).
    Cached by day, not by patient: every event asks, a feed spans few days, and building
    a datetime for each event was 2% of the engine's time."""
    today = date.fromordinal(_EPOCH_ORDINAL + day)
    return today.year, today.month, today.day
