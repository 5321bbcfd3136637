"""Route normalisation: free text and common codes to one small vocabulary.

Why: the MME factor depends on the route (IV morphine counts three times oral), so
"PO", "by mouth", "P.O." and SNOMED 26643006 must all become "oral". Anything that is
clearly a route but has no place in the vocabulary becomes "other" (unknown MME);
a missing route stays None. A route that names two different routes ("PO/IV") is
"other": guessing would either over- or under-count by a factor of three.

Judgement calls (documented in the tests):
- Enteral tubes (NG, G-tube, PEG tube, feeding tube) are "oral": the same oral product,
  converted with the oral factors.
- "continuous infusion", "drip", "PCA" without another route are "iv" (epidural
  infusions are written as epidural; "PCEA" is epidural). Intraosseous is "iv"
  (pharmacokinetically equivalent).
- Short codes that are also English words or other abbreviations ("IN", "IT", "EP",
  "B") count only when they are the whole route text; "IO" (intraosseous in some
  systems, intraocular in HL7 v2 table 0162) and "NS" (nasal or normal saline) are
  "other".
"""

from __future__ import annotations

from functools import lru_cache

from .catalogue import tokenize

ROUTES: tuple[str, ...] = (
    "oral", "sublingual", "buccal", "iv", "sc", "im", "transdermal", "rectal",
    "intranasal", "epidural", "intrathecal", "other",
)

#: SNOMED CT route-of-administration concepts (qualifier values).
SNOMED_ROUTES: dict[str, str] = {
    "26643006": "oral",
    "37839007": "sublingual",
    "54471007": "buccal",
    "47625008": "iv",
    "34206005": "sc",
    "78421000": "im",
    "45890007": "transdermal",
    "37161004": "rectal",
    "46713006": "intranasal",
    "404820008": "epidural",
    "72607000": "intrathecal",
}

# Codes that are only a route when they are the entire text.
_WHOLE_TEXT_ONLY: dict[str, str] = {
    "in": "intranasal",
    "it": "intrathecal",
    "ep": "epidural",
    "b": "buccal",
    "gtt": "oral",
}

# Token sequences, longest matched first. Weak words (infusion, drip, tube...) only decide
# when no strong route word is present.
_STRONG: dict[tuple[str, ...], str] = {
    phrase: route
    for route, phrases in {
        "oral": ["po", "p o", "oral", "orally", "by mouth", "per os", "per mouth", "enteral", "ng", "ngt", "og",
                 "ogt", "gt", "g tube", "j tube", "gj tube", "peg tube", "nj", "per tube", "via tube",
                 "feeding tube", "nasogastric", "orogastric", "gastrostomy", "jejunostomy"],
        "sublingual": ["sl", "s l", "sublingual", "sublingually", "under the tongue", "under tongue"],
        "buccal": ["buccal", "bucc", "buccally", "transmucosal", "oral transmucosal"],
        "iv": ["iv", "i v", "ivp", "iv push", "ivpush", "ivpb", "iv piggyback", "intravenous", "intravenously",
               "iv bolus", "iv infusion", "iv drip", "iv pca", "intraosseous"],
        "sc": ["sc", "s c", "sq", "s q", "subq", "sub q", "subcut", "sub cut", "subcutaneous", "subcutaneously",
               "sc inj", "hypodermic"],
        "im": ["im", "i m", "intramuscular", "intramuscularly"],
        "transdermal": ["td", "transdermal", "transdermally", "patch", "topical patch", "transdermal patch"],
        "rectal": ["pr", "p r", "rectal", "rectally", "per rectum", "rect"],
        "intranasal": ["intranasal", "intranasally", "nasal", "nasally", "nostril", "nare", "nares"],
        "epidural": ["epidural", "epidurally", "pcea", "caudal", "epidural infusion"],
        "intrathecal": ["intrathecal", "intrathecally", "spinal", "intraspinal", "subarachnoid"],
        "other": ["topical", "inhalation", "inhaled", "inh", "neb", "nebulized", "nebulised", "ophthalmic",
                  "otic", "vaginal", "pv", "intradermal", "id", "intraarticular", "intra articular", "io",
                  "ns", "irrigation", "intravesical", "perineural", "nerve block", "intrapleural",
                  "intraocular", "cutaneous"],
    }.items()
    for phrase in (tuple(p.split()) for p in phrases)
}
_WEAK: dict[tuple[str, ...], str] = {
    ("continuous", "infusion"): "iv",
    ("infusion",): "iv",
    ("drip",): "iv",
    ("pca",): "iv",
    ("bolus",): "iv",
    ("tube",): "oral",
    ("suppository",): "rectal",
    ("inj",): "other",
    ("injection",): "other",
}
_MAX_PHRASE = max(len(phrase) for phrase in (*_STRONG, *_WEAK))


def _scan(tokens: tuple[str, ...], table: dict[tuple[str, ...], str]) -> set[str]:
    found: set[str] = set()
    i = 0
    while i < len(tokens):
        for size in range(min(_MAX_PHRASE, len(tokens) - i), 0, -1):
            route = table.get(tokens[i:i + size])
            if route is not None:
                found.add(route)
                i += size
                break
        else:
            i += 1
    return found


def normalize_route(route: str | None) -> str | None:
    """One of ``ROUTES`` for a route text or code; None when missing or blank."""
    return _normalize(route) if isinstance(route, str) else None


@lru_cache(maxsize=4096)
def _normalize(route: str) -> str | None:
    text = route.strip()
    if not text:
        return None
    if text.casefold() in ROUTES:
        return text.casefold()
    if text in SNOMED_ROUTES:
        return SNOMED_ROUTES[text]
    tokens = tokenize(text)
    if not tokens:
        return "other"
    whole = " ".join(tokens)
    if whole in _WHOLE_TEXT_ONLY:
        return _WHOLE_TEXT_ONLY[whole]
    strong = _scan(tokens, _STRONG)
    if strong:
        # "iv infusion" is one route; "po/iv" is two and stays undecided.
        specific = strong - {"other"} or strong
        return specific.pop() if len(specific) == 1 else "other"
    weak = _scan(tokens, _WEAK) - {"other"}
    return weak.pop() if len(weak) == 1 else "other"


_ORAL_FORMS = frozenset({"tablet", "tablets", "tab", "tabs", "capsule", "capsules", "cap", "caps"})


def infer_route(route: str | None, dose_unit: str | None, strength_unit: str | None = None) -> str | None:
    """The normalized route, or what the dose form implies when the route is missing.

    Tablets and capsules are oral; a patch, or a strength in mcg/h, is transdermal.
    Anything else without a route stays None (mL may be oral solution or injection).
    """
    normalized = normalize_route(route)
    if normalized is not None:
        return normalized
    unit = " ".join(tokenize(dose_unit)) if isinstance(dose_unit, str) else ""
    if unit in _ORAL_FORMS:
        return "oral"
    if unit in ("patch", "patches"):
        return "transdermal"
    if isinstance(strength_unit, str) and tokenize(strength_unit) in (("mcg", "h"), ("mcg", "hr"), ("mcg", "hour")):
        return "transdermal"
    return None
