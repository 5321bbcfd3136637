"""The checked-in demo feed (``feed.ndjson``), its generator and its expected alerts.

``FEED_PATH`` is canonical NDJSON events for about 37 patients over five days
(``medmon evaluate`` it); ``EXPECTED_PATH`` lists the alert episodes the clinical rules
call for, scenario by scenario. Regenerate both with ``python -m monitor.demo.scenarios``.
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).parent
FEED_PATH = DEMO_DIR / "feed.ndjson"
EXPECTED_PATH = DEMO_DIR / "expected_alerts.json"

__all__ = ["DEMO_DIR", "EXPECTED_PATH", "FEED_PATH"]
