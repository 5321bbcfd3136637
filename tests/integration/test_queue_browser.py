"""End to end in a real browser: broker, worker, queue service and headless Chromium.

The demo feed produces alerts; they appear on the page; the test logs in, acknowledges
one and snoozes another through the page's forms; then the page, the JSON API, the
alert-actions topic, the queue's /metrics and the worker's /metrics must all agree, and
the monitor must not re-raise the snoozed alert. A screenshot must not be blank.

Without chromium and chromium-driver (Debian packages) the test is skipped with the
reason, except under ``CI``, where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitor.cli import main as medmon
from monitor.demo import FEED_PATH
from monitor.queue.auth import hash_password
from tests.integration.workers import Worker

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
USER, PASSWORD, TOKEN = "pharm.browser", "browser-test-password", "browser-test-token-5b1f"


def browser():  # type: ignore[no-untyped-def]
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER)) if not path]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"the browser test is required in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1400"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class QueueProcess:
    """A ``medmon queue`` child process on the worker's topics."""

    def __init__(self, worker: Worker, tmp: Path) -> None:
        users = tmp / "users.json"
        users.write_text(json.dumps({USER: hash_password(PASSWORD)}))
        self.env = dict(worker.env, MEDSAFETY_QUEUE_USERS_FILE=str(users), MEDSAFETY_QUEUE_TOKEN=TOKEN,
                        MEDSAFETY_QUEUE_PORT="0")
        self.log = tmp / "queue.log"
        self.process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "queue"], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        self.url = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.url:
            found = re.search(r"medsafety queue: (http://\S+/) ", self.log.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
            elif self.process.poll() is not None:
                break
            else:
                time.sleep(0.1)  # waiting for a child process to print its address
        assert self.url, f"queue did not start:\n{self.log.read_text(errors='replace')[-3000:]}"

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(self.url + path.lstrip("/"), headers={"Authorization": f"Bearer {TOKEN}"})
        return urllib.request.urlopen(request, timeout=10).read()

    def alerts(self, status: str = "open") -> list[dict]:
        return json.loads(self.get(f"/api/alerts?status={status}"))["alerts"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def until(condition, what: str, timeout: float = 90):  # type: ignore[no-untyped-def]
    """Poll an observable condition with a deadline; returns its first truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)  # polling processes and a browser: no event to await across them
    raise AssertionError(f"timed out waiting for {what}")


def counter(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()) or line.startswith(
                f"{name} ") and not wanted:
            total += float(line.rsplit(" ", 1)[1])
    return total


def distinct_colours(png: Path) -> int:
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours or ())


def test_pharmacist_works_the_queue_in_a_browser(embedded_broker, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    driver = browser()
    worker = Worker(embedded_broker.url, tmp_path).start()
    queue = None
    try:
        queue = QueueProcess(worker, tmp_path)
        worker.use_env(monkeypatch)
        assert medmon(["replay", str(FEED_PATH)]) == 0
        worker.wait_caught_up()
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        driver.get(queue.url)
        assert "/login" in driver.current_url
        driver.find_element(By.ID, "user").send_keys(USER)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login").click()

        def open_cards():  # type: ignore[no-untyped-def]
            driver.get(queue.url)
            return driver.find_elements(By.CSS_SELECTOR, "section.alert[data-status=open]")

        cards = until(lambda: len(open_cards()) >= 2 and open_cards(), "alerts on the page")
        api_open = queue.alerts()
        page_ids = [card.get_attribute("data-alert-id") for card in cards]
        assert page_ids == [a["alert_id"] for a in api_open]  # same alerts, same order
        acked_id, snoozed_id = page_ids[0], page_ids[1]
        acked, snoozed = api_open[0], api_open[1]
        assert acked["patient_id"] in cards[0].text and acked["summary"] in cards[0].text

        Select(cards[0].find_element(By.NAME, "intervention")).select_by_value("prescriber_contacted")
        cards[0].find_element(By.NAME, "note").send_keys("discussed with the team")
        cards[0].find_element(By.CSS_SELECTOR, "button.ack").click()
        until(lambda: acked_id not in [c.get_attribute("data-alert-id") for c in open_cards()], "ack on the page")
        card = driver.find_element(By.ID, f"alert-{snoozed_id}")
        Select(card.find_element(By.NAME, "minutes")).select_by_value("1440")
        card.find_element(By.CSS_SELECTOR, "button.snooze").click()
        until(lambda: snoozed_id not in [c.get_attribute("data-alert-id") for c in open_cards()], "snooze on page")

        # The page: each under its own filter, with who did what.
        driver.get(queue.url + "?status=acknowledged")
        assert f"Acknowledged by {USER}: Prescriber contacted" in driver.find_element(By.ID, f"alert-{acked_id}").text
        driver.get(queue.url + "?status=snoozed")
        assert f"Snoozed by {USER} for 1440 min" in driver.find_element(By.ID, f"alert-{snoozed_id}").text
        screenshot = tmp_path / "queue.png"
        driver.get(queue.url + "?status=all")
        assert driver.save_screenshot(str(screenshot))
        assert distinct_colours(screenshot) > 20, "the screenshot looks blank"

        # The API agrees.
        [api_acked] = queue.alerts("acknowledged")
        [api_snoozed] = queue.alerts("snoozed")
        assert (api_acked["alert_id"], api_acked["acknowledged"]["user"], api_acked["acknowledged"]["intervention"]) \
            == (acked_id, USER, "prescriber_contacted")
        assert (api_snoozed["alert_id"], api_snoozed["snoozed"]["snooze_minutes"]) == (snoozed_id, 1440)
        assert {a["alert_id"] for a in queue.alerts()}.isdisjoint({acked_id, snoozed_id})

        # The actions topic holds the audit: who, when, what, keyed by patient id.
        records = worker.read_to_end(worker.topic("actions"))
        audit = sorted((json.loads(r.value) | {"key": r.key.decode()} for r in records), key=lambda a: a["action"])
        assert [(a["action"], a["alert_id"], a["user"], a["key"]) for a in audit] == [
            ("acknowledge", acked_id, USER, acked["patient_id"]), ("snooze", snoozed_id, USER, snoozed["patient_id"])]
        assert audit[0]["intervention"] == "prescriber_contacted" and audit[0]["note"] == "discussed with the team"
        assert audit[1]["snooze_for"] in ("P1D", "PT24H") and all(a["occurred_at"] for a in audit)

        # The queue's metrics count them; the worker applied both to the patients' episodes.
        queue_metrics = queue.get("/metrics").decode()
        assert counter(queue_metrics, "medsafety_queue_actions_total", action="acknowledge",
                       kind=acked["kind"], reason="prescriber_contacted") == 1
        assert counter(queue_metrics, "medsafety_queue_actions_total", action="snooze", kind=snoozed["kind"],
                       reason="1440m") == 1
        assert counter(queue_metrics, "medsafety_queue_time_to_acknowledge_seconds_count") == 1
        assert acked["patient_id"] not in queue_metrics and USER not in queue_metrics
        until(lambda: counter(worker.metrics_text(), "medsafety_actions_total", outcome="applied") == 2,
              "the worker to apply both actions")
        assert counter(worker.metrics_text(), "medsafety_dead_letters_total") == 0

        # The monitor does not re-raise the snoozed alert within the snooze.
        before = [r for r in worker.read_to_end(worker.topic("alerts")) if json.loads(r.value)["alert_id"] == snoozed_id]
        worker.wait_caught_up()
        after = [r for r in worker.read_to_end(worker.topic("alerts")) if json.loads(r.value)["alert_id"] == snoozed_id]
        assert len(after) == len(before) and json.loads(after[-1].value)["status"] != "resolved"
        assert snoozed_id in {a["alert_id"] for a in queue.alerts("snoozed")}
    finally:
        driver.quit()
        if queue is not None:
            queue.stop()
        worker.stop()
