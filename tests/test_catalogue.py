"""Drug catalogue: classes, names, codes and the look-alikes that must never match."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.knowledge import DrugCatalogue, DrugClass, DrugInfo, tokenize
from monitor.knowledge.catalogue import DEFAULT_DRUGS_PATH

OPIOID = DrugClass.OPIOID
BENZO = DrugClass.BENZODIAZEPINE
GABA = DrugClass.GABAPENTINOID
LAX = DrugClass.LAXATIVE
NMDA = DrugClass.NMDA_ANTAGONIST


@pytest.fixture(scope="module")
def cat() -> DrugCatalogue:
    return DrugCatalogue.default()


def ingredients(cat: DrugCatalogue, text: str, rxnorm: str | None = None) -> tuple[str, ...] | None:
    info = cat.classify(text, rxnorm)
    return None if info is None else info.ingredients


# -- the clinical-rules classes ------------------------------------------------------------

CLASS_MEMBERS = {
    OPIOID: ["morphine", "hydromorphone", "oxycodone", "hydrocodone", "oxymorphone", "codeine", "fentanyl",
             "sufentanil", "remifentanil", "methadone", "buprenorphine", "tramadol", "tapentadol", "meperidine",
             "levorphanol", "butorphanol", "alfentanil", "nalbuphine", "pentazocine", "dihydrocodeine", "opium"],
    BENZO: ["lorazepam", "diazepam", "midazolam", "remimazolam", "alprazolam", "clonazepam", "temazepam",
            "triazolam", "chlordiazepoxide", "oxazepam", "clobazam"],
    GABA: ["gabapentin", "pregabalin"],
    LAX: ["senna", "bisacodyl", "polyethylene glycol 3350", "lactulose", "magnesium hydroxide", "lubiprostone",
          "methylnaltrexone", "naloxegol", "naldemedine", "docusate"],
    NMDA: ["ketamine", "dextromethorphan", "amantadine"],
}


@pytest.mark.parametrize("drug_class,member", [(c, m) for c, ms in CLASS_MEMBERS.items() for m in ms])
def test_every_clinical_rules_member_is_in_its_class(cat, drug_class, member):
    info = cat.classify(member)
    assert info is not None
    assert info.ingredients == (member,)
    assert info.classes == frozenset({drug_class})
    assert info.matched_by == "name"
    assert info.opioid == (member if drug_class is OPIOID else None)


def test_catalogue_has_exactly_the_documented_ingredients(cat):
    expected = {m for members in CLASS_MEMBERS.values() for m in members}
    assert cat.ingredient_names == expected


@pytest.mark.parametrize("text,expected", [
    # opioids
    ("OxyContin 10 mg ER tablet", "oxycodone"), ("Roxicodone", "oxycodone"), ("Percocet 5/325", "oxycodone"),
    ("Endocet", "oxycodone"), ("Norco 5-325", "hydrocodone"), ("Vicodin", "hydrocodone"),
    ("Lortab elixir", "hydrocodone"), ("Dilaudid PF", "hydromorphone"), ("Exalgo", "hydromorphone"),
    ("Duragesic 25 mcg/hr patch", "fentanyl"), ("Sublimaze", "fentanyl"), ("Actiq", "fentanyl"),
    ("Fentora", "fentanyl"), ("MS Contin 15 mg", "morphine"), ("Kadian", "morphine"), ("Roxanol", "morphine"),
    ("MSO4 2 mg IV", "morphine"), ("MSIR 15 mg", "morphine"), ("Dolophine", "methadone"),
    ("Methadose", "methadone"), ("Subutex", "buprenorphine"), ("Suboxone 8-2 mg film", "buprenorphine"),
    ("Zubsolv", "buprenorphine"), ("Butrans 10 mcg/hr", "buprenorphine"), ("Belbuca", "buprenorphine"),
    ("Sublocade", "buprenorphine"), ("Buprenex", "buprenorphine"), ("Ultram", "tramadol"),
    ("Ultracet", "tramadol"), ("ConZip", "tramadol"), ("Nucynta ER", "tapentadol"), ("Demerol", "meperidine"),
    ("Opana ER", "oxymorphone"), ("Tylenol #3", "codeine"), ("Tylenol #4", "codeine"),
    ("Tylenol No. 3", "codeine"), ("Tylenol with Codeine", "codeine"), ("Tylenol-Codeine #3", "codeine"),
    ("Ultiva", "remifentanil"), ("Sufenta", "sufentanil"), ("Alfenta", "alfentanil"), ("Stadol NS", "butorphanol"),
    ("Nubain", "nalbuphine"), ("Talwin", "pentazocine"), ("paregoric", "opium"), ("opium tincture", "opium"),
    ("Synalgos-DC", "dihydrocodeine"),
    # benzodiazepines
    ("Ativan", "lorazepam"), ("Valium", "diazepam"), ("Versed", "midazolam"), ("Byfavo", "remimazolam"),
    ("Xanax XR", "alprazolam"), ("Klonopin", "clonazepam"), ("Restoril", "temazepam"), ("Halcion", "triazolam"),
    ("Librium", "chlordiazepoxide"), ("Onfi", "clobazam"), ("Sympazan", "clobazam"),
    # gabapentinoids
    ("Neurontin", "gabapentin"), ("Gralise", "gabapentin"), ("Horizant", "gabapentin"),
    ("gabapentin enacarbil ER", "gabapentin"), ("Lyrica CR", "pregabalin"),
    # laxatives
    ("Senokot", "senna"), ("sennosides 8.6 mg", "senna"), ("Dulcolax 10 mg suppository", "bisacodyl"),
    ("MiraLAX 17 g", "polyethylene glycol 3350"), ("GlycoLax", "polyethylene glycol 3350"),
    ("GoLytely", "polyethylene glycol 3350"), ("PEG 3350", "polyethylene glycol 3350"),
    ("PEG3350", "polyethylene glycol 3350"), ("PEG-3350 powder", "polyethylene glycol 3350"),
    ("polyethylene glycol 3350", "polyethylene glycol 3350"), ("polyethylene glycol 17 gram", "polyethylene glycol 3350"),
    ("Kristalose", "lactulose"), ("Enulose", "lactulose"), ("Milk of Magnesia", "magnesium hydroxide"),
    ("MOM 30 mL", "magnesium hydroxide"), ("Amitiza", "lubiprostone"), ("Relistor", "methylnaltrexone"),
    ("Movantik", "naloxegol"), ("Symproic", "naldemedine"), ("Colace", "docusate"),
    # NMDA antagonists
    ("Ketalar", "ketamine"), ("Symmetrel", "amantadine"), ("Delsym", "dextromethorphan"),
])
def test_brand_names_and_abbreviations(cat, text, expected):
    assert ingredients(cat, text) == (expected,)


@pytest.mark.parametrize("text,expected", [
    ("morphine sulfate", "morphine"), ("morphine sulfate ER 15 mg tab", "morphine"),
    ("oxycodone hydrochloride", "oxycodone"), ("oxycodone HCl 5 mg", "oxycodone"),
    ("hydrocodone bitartrate", "hydrocodone"), ("fentanyl citrate 50 mcg/mL", "fentanyl"),
    ("meperidine HCl", "meperidine"), ("methadone hydrochloride", "methadone"),
    ("hydromorphone HCl PF", "hydromorphone"), ("sennosides", "senna"), ("docusate sodium", "docusate"),
    ("lorazepam 2 mg/mL inj", "lorazepam"), ("ketamine HCl", "ketamine"),
])
def test_salts(cat, text, expected):
    assert ingredients(cat, text) == (expected,)


@pytest.mark.parametrize("text", ["oxyCODONE", "OXYCODONE", "OxyCodone", "HYDROmorphone", "hydroMORPHONE",
                                  "traMADol", "ALPRAZolam", "LORazepam", "clonazePAM", "morphine"])
def test_tall_man_lettering_is_only_case(cat, text):
    assert cat.classify(text) is not None


@pytest.mark.parametrize("text,expected", [
    ("oxycodone-acetaminophen 5/325", ("oxycodone",)),
    ("oxyCODONE/APAP 5-325 mg", ("oxycodone",)),
    ("acetaminophen-codeine 300-30 mg", ("codeine",)),
    ("APAP/codeine", ("codeine",)),
    ("APAP-hydrocodone 325-5", ("hydrocodone",)),
    ("guaifenesin-codeine syrup", ("codeine",)),
    ("promethazine with codeine", ("codeine",)),
    ("buprenorphine-naloxone 8 mg-2 mg SL film", ("buprenorphine",)),
    ("docusate-senna 50-8.6 mg", ("docusate", "senna")),
    ("senna-docusate", ("docusate", "senna")),
    ("Senokot-S", ("docusate", "senna")),
    ("Peri-Colace", ("docusate", "senna")),
    ("Senna-S 2 tabs", ("docusate", "senna")),
    ("tramadol-acetaminophen", ("tramadol",)),
    ("ibuprofen-hydrocodone", ("hydrocodone",)),
    ("morphine / ketamine PCA", ("ketamine", "morphine")),
    ("guaifenesin-dextromethorphan", ("dextromethorphan",)),
])
def test_combination_products_match_every_catalogue_ingredient(cat, text, expected):
    assert ingredients(cat, text) == expected


def test_opioid_field_names_the_opioid_of_a_combination(cat):
    assert cat.classify("Tylenol #3").opioid == "codeine"
    assert cat.classify("oxycodone-acetaminophen").opioid == "oxycodone"
    two = cat.classify("morphine and hydromorphone compounded")
    assert two.ingredients == ("hydromorphone", "morphine")
    assert two.opioid == "hydromorphone"  # first alphabetically


def test_multiple_classes_are_united(cat):
    info = cat.classify("oxycodone + lorazepam")
    assert info.classes == frozenset({OPIOID, BENZO})


# -- bowel regimen vs stool softener -------------------------------------------------------

@pytest.mark.parametrize("text,regimen,softener_only", [
    ("docusate", False, True), ("Colace 100 mg", False, True), ("docusate sodium", False, True),
    ("Dulcolax Stool Softener", False, True),
    ("docusate-senna", True, False), ("Senokot-S", True, False), ("Peri-Colace", True, False),
    ("senna", True, False), ("bisacodyl", True, False), ("Dulcolax", True, False), ("MiraLAX", True, False),
    ("lactulose", True, False), ("milk of magnesia", True, False), ("lubiprostone", True, False),
    ("methylnaltrexone", True, False), ("naloxegol", True, False), ("naldemedine", True, False),
    ("oxycodone", False, False),
])
def test_bowel_regimen_and_softener_flags(cat, text, regimen, softener_only):
    info = cat.classify(text)
    assert info.bowel_regimen is regimen
    assert info.softener_only is softener_only


# -- look-alikes that must never match -----------------------------------------------------

@pytest.mark.parametrize("text", [
    "MgSO4", "MgSO4 2 g IV", "magnesium sulfate", "magnesium sulfate 4 g/100 mL", "magnesium citrate",
    "magnesium oxide", "hydroxyzine", "hydroxyzine pamoate", "oxybutynin", "naloxone", "Narcan",
    "naloxone 0.4 mg IV", "naltrexone", "Vivitrol naltrexone", "loperamide", "Imodium", "methylphenidate",
    "trazodone", "clonidine", "clozapine", "meropenem", "Tylenol", "Tylenol 325 mg", "Tylenol 3 g max per day",
    "acetaminophen", "APAP", "Sennetsu", "senn", "MS", "MS 2 mg", "HC", "dex", "dexamethasone",
    "dexmedetomidine", "Precedex", "propofol", "hydrochlorothiazide", "hydrocortisone", "oxytocin", "oxcarbazepine",
    "morphology", "codependent", "fentanylx", "xfentanyl", "carfentanil", "methylergonovine", "metoclopramide",
    "polyethylene glycol 400 eye drops", "macrogol 400", "PEG", "PEG-interferon", "pegfilgrastim",
    "aluminum hydroxide-magnesium hydroxide-simethicone", "Maalox", "calcium carbonate-magnesium hydroxide",
    "T3", "liothyronine", "DM", "PCA pump", "ketorolac", "ketoconazole", "gabapentine-like", "lorazepamide",
])
def test_look_alikes_are_never_classified(cat, text):
    assert cat.classify(text) is None


@pytest.mark.parametrize("text,expected", [
    ("morphine", ("morphine",)), ("hydromorphone", ("hydromorphone",)),
    ("fentanyl", ("fentanyl",)), ("sufentanil", ("sufentanil",)), ("remifentanil", ("remifentanil",)),
    ("alfentanil", ("alfentanil",)), ("codeine", ("codeine",)), ("dihydrocodeine", ("dihydrocodeine",)),
    ("methylnaltrexone", ("methylnaltrexone",)), ("dextromethorphan", ("dextromethorphan",)),
    ("gabapentin", ("gabapentin",)), ("pregabalin", ("pregabalin",)),
])
def test_similar_names_are_distinct_ingredients(cat, text, expected):
    assert ingredients(cat, text) == expected


def test_dextromethorphan_is_nmda_not_opioid(cat):
    info = cat.classify("dextromethorphan 30 mg")
    assert info.classes == frozenset({NMDA})
    assert info.opioid is None


def test_methylnaltrexone_is_a_laxative_not_an_opioid(cat):
    info = cat.classify("methylnaltrexone 12 mg SC")
    assert info.classes == frozenset({LAX}) and info.opioid is None and info.bowel_regimen


@pytest.mark.parametrize("text", [
    "vancomycin 1 g IV", "sodium chloride 0.9%", "influenza vaccine", "heparin 5000 units SC",
    "insulin glargine", "potassium chloride 20 mEq", "", "   ", "---", "12345", "0.9% NaCl",
])
def test_unmonitored_drugs_are_none(cat, text):
    assert cat.classify(text) is None


# -- RxNorm codes -------------------------------------------------------------------------

@pytest.mark.parametrize("code,expected", [
    ("7052", "morphine"), ("3423", "hydromorphone"), ("7804", "oxycodone"), ("5489", "hydrocodone"),
    ("7814", "oxymorphone"), ("2670", "codeine"), ("4337", "fentanyl"), ("6813", "methadone"),
    ("1819", "buprenorphine"), ("10689", "tramadol"), ("787390", "tapentadol"), ("6754", "meperidine"),
    ("480", "alfentanil"), ("56795", "sufentanil"), ("73032", "remifentanil"), ("6470", "lorazepam"),
    ("3322", "diazepam"), ("6960", "midazolam"), ("596", "alprazolam"), ("2598", "clonazepam"),
    ("25480", "gabapentin"), ("187832", "pregabalin"), ("3289", "dextromethorphan"),
])
def test_rxnorm_ingredient_codes(cat, code, expected):
    info = cat.classify("unnamed formulary item", code)
    assert info is not None and info.ingredients == (expected,) and info.matched_by == "rxnorm"


def test_rxnorm_code_with_whitespace(cat):
    assert ingredients(cat, "", " 7052 ") == ("morphine",)


def test_rxnorm_and_name_agreeing(cat):
    info = cat.classify("morphine sulfate", "7052")
    assert info.ingredients == ("morphine",) and info.matched_by == "rxnorm+name"


def test_a_wrong_code_cannot_hide_an_opioid_named_in_the_text(cat):
    info = cat.classify("oxycodone 5 mg", "6470")  # lorazepam's code on an oxycodone order
    assert info.ingredients == ("lorazepam", "oxycodone")
    assert info.classes == frozenset({OPIOID, BENZO})
    assert info.opioid == "oxycodone" and info.matched_by == "rxnorm+name"


def test_unknown_or_product_level_code_falls_back_to_name(cat):
    info = cat.classify("hydrocodone-acetaminophen 5-325", "857005")
    assert info.ingredients == ("hydrocodone",) and info.matched_by == "name"


@pytest.mark.parametrize("code", ["7242", "7243", "161", "11124", "", "abc", "RxNorm"])
def test_codes_of_look_alikes_and_junk_are_not_classified(cat, code):
    assert cat.classify("unnamed item", code) is None


# -- data file integrity ------------------------------------------------------------------

def test_data_file_codes_are_unique_and_numeric():
    data = json.loads(DEFAULT_DRUGS_PATH.read_text(encoding="utf-8"))
    codes = [code for spec in data["ingredients"].values() for code in spec["rxnorm"]]
    assert len(codes) == len(set(codes))
    assert all(code.isdigit() for code in codes)
    assert data["notes"], "the data file documents its judgement calls"


def test_never_match_names_are_not_aliases(cat):
    data = json.loads(DEFAULT_DRUGS_PATH.read_text(encoding="utf-8"))
    for name in data["never_match"]:
        assert cat.classify(name) is None, name


def test_load_from_a_path_and_default_is_cached(tmp_path):
    assert DrugCatalogue.default() is DrugCatalogue.default()
    path = tmp_path / "drugs.json"
    path.write_text(json.dumps({"ingredients": {
        "morphine": {"classes": ["opioid"], "rxnorm": ["7052"], "names": ["morphine", "Morphy"]},
    }}), encoding="utf-8")
    custom = DrugCatalogue.load(path)
    assert custom.classify("Morphy 5 mg").opioid == "morphine"
    assert custom.classify("oxycodone") is None


@pytest.mark.parametrize("data", [
    {"never_match": ["ms"], "ingredients": {"morphine": {"classes": ["opioid"], "names": ["MS"]}}},
    {"ingredients": {"a": {"classes": ["opioid"], "rxnorm": ["1"], "names": ["a"]},
                     "b": {"classes": ["opioid"], "rxnorm": ["1"], "names": ["b"]}}},
    {"ingredients": {"a": {"classes": ["opioid"], "names": ["x"]}, "b": {"classes": ["opioid"], "names": ["x"]}}},
    {"ingredients": {"a": {"classes": [], "names": ["a"]}}},
    {"ingredients": {"a": {"classes": ["not-a-class"], "names": ["a"]}}},
    {"ingredients": {"a": {"classes": ["opioid"], "names": ["--"]}}},
    {"ingredients": {"a": {"classes": ["opioid"], "names": ["a"]}}, "products": [{"names": ["p"], "ingredients": ["z"]}]},
])
def test_inconsistent_data_is_rejected(data):
    with pytest.raises(ValueError):
        DrugCatalogue(data)


# -- speed and robustness -----------------------------------------------------------------

def test_cached_classify_is_fast(cat):
    texts = [f"oxycodone {i} mg" for i in range(50)] + ["vancomycin"] * 10
    for text in texts:
        cat.classify(text, "7804")
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            cat.classify(text, "7804")
    per_call = (time.perf_counter() - start) / (rounds * len(texts))
    assert per_call < 5e-6, f"{per_call * 1e6:.2f} us per cached classify"


def test_results_are_immutable_and_shared(cat):
    first = cat.classify("oxycodone 5 mg")
    assert cat.classify("oxycodone 5 mg") is first
    assert isinstance(first, DrugInfo)
    with pytest.raises(AttributeError):
        first.opioid = "morphine"  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80), code=st.one_of(st.none(), st.text(max_size=12)))
def test_classify_never_raises(text, code):
    info = DrugCatalogue.default().classify(text, code)
    assert info is None or (info.ingredients and info.classes)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_text_without_a_catalogue_token_is_none(text):
    cat = DrugCatalogue.default()
    assume(not set(tokenize(text)) & cat.vocabulary)
    assert cat.classify(text) is None


_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)


@settings(max_examples=200, deadline=None)
@given(before=st.lists(_WORDS, max_size=4), after=st.lists(_WORDS, max_size=4),
       name=st.sampled_from(["oxycodone", "HYDROmorphone", "MS Contin", "Percocet", "lorazepam", "pregabalin"]))
def test_a_name_is_found_among_unrelated_words(before, after, name):
    cat = DrugCatalogue.default()
    assume(not set(tokenize(" ".join(before + after))) & cat.vocabulary)
    expected = cat.classify(name).ingredients
    assert cat.classify(" ".join([*before, name, *after])).ingredients == expected
