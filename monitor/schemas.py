"""JSON Schemas of the event and alert contracts, generated from the pydantic models.

``python -m monitor.schemas`` rewrites ``schemas/*.schema.json``; a test fails when a
model and its checked-in schema drift apart, so producers in other languages can rely on
the files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from .alerts import AlertRecord
from .events import AlertAction, Event, PainScore, PatientUpdate, Prescription

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
_BASE_URI = "https://medsafety.example/schemas/"


def generated_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every contract."""
    schemas: dict[str, dict[str, Any]] = {
        "prescription.schema.json": Prescription.model_json_schema(),
        "pain_score.schema.json": PainScore.model_json_schema(),
        "patient_update.schema.json": PatientUpdate.model_json_schema(),
        "alert_action.schema.json": AlertAction.model_json_schema(),
        "event.schema.json": TypeAdapter(Event).json_schema(),
        "alert.schema.json": AlertRecord.model_json_schema(),
    }
    for name, schema in schemas.items():
        schema.setdefault("title", name.split(".")[0])
        schemas[name] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": _BASE_URI + name, **schema}
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generated_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(path)
