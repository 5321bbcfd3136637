"""Drug knowledge: classes, routes, MME factors and monitored care units.

Pure functions over the package's own JSON data files (``data/``); no network, no
patient data. See ``shared/clinical-rules.md`` for the facts behind each table.
"""

from .care_units import CareUnits, is_monitored_unit, load_care_units
from .catalogue import DrugCatalogue, DrugClass, DrugInfo, tokenize
from .mme import (
    DEFAULT_FACTOR_SET,
    FACTOR_SET_NAMES,
    DailyDose,
    Dose,
    FactorSet,
    MmeTotal,
    OpioidExposure,
    OrderMME,
    PatientMME,
    daily_dose,
    is_oud_indication,
    mme_total,
    patient_mme,
)
from .routes import ROUTES, SNOMED_ROUTES, infer_route, normalize_route

__all__ = [
    "CareUnits",
    "DEFAULT_FACTOR_SET",
    "DailyDose",
    "Dose",
    "DrugCatalogue",
    "DrugClass",
    "DrugInfo",
    "FACTOR_SET_NAMES",
    "FactorSet",
    "MmeTotal",
    "OpioidExposure",
    "OrderMME",
    "PatientMME",
    "ROUTES",
    "SNOMED_ROUTES",
    "daily_dose",
    "infer_route",
    "is_monitored_unit",
    "is_oud_indication",
    "load_care_units",
    "mme_total",
    "normalize_route",
    "patient_mme",
    "tokenize",
]
