"""The worker's aiokafka consumer as faust builds it, with the monitor's corrections."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust.transport.consumer

from monitor.clinical.context import ClinicalRules
from monitor.metrics import Metrics
from monitor.settings import RuleSettings, ServiceSettings
from monitor.worker import create_app


def test_the_consumer_fetch_waits_as_configured_not_faust_s_fixed_one_and_a_half_seconds() -> None:
    """faust 0.15 fixes fetch_max_wait_ms=1500; the embedded broker holds a fetch for the
    whole wait, so the setting bounds how long a record waits to be fetched there."""
    async def build(env: dict[str, str]) -> int:
        service = ServiceSettings.from_env(env)
        app = create_app(service, ClinicalRules.from_settings(RuleSettings.from_env({})), Metrics(), "127.0.0.1:1")
        client = app.consumer._thread._create_worker_consumer(app.transport)  # noqa: SLF001 - what on_start builds
        return client._fetch_max_wait_ms  # noqa: SLF001

    assert asyncio.run(build({})) == 50
    assert asyncio.run(build({"MEDSAFETY_FETCH_MAX_WAIT": "0.2"})) == 200


def test_the_consumer_fetches_the_configured_bytes_per_partition_not_faust_s_mebibyte() -> None:
    """Through a backlog the watermark follows the topic furthest behind; smaller fetches
    keep the topics closer together, so fewer events are held (and stored, and written)."""
    async def build(env: dict[str, str]) -> int:
        service = ServiceSettings.from_env(env)
        app = create_app(service, ClinicalRules.from_settings(RuleSettings.from_env({})), Metrics(), "127.0.0.1:1")
        client = app.consumer._thread._create_worker_consumer(app.transport)  # noqa: SLF001 - what on_start builds
        return client._max_partition_fetch_bytes  # noqa: SLF001

    assert asyncio.run(build({})) == 128 * 1024
    assert asyncio.run(build({"MEDSAFETY_FETCH_PARTITION_BYTES": "65536"})) == 65536


def test_a_commit_of_any_origin_starts_the_next_window_of_commit_every_records(monkeypatch) -> None:
    """Every commit path ends in the hook, which opens the next window (its records and its
    time) and resets faust's own records count. Records handled while the states were
    written (batches run between the write's turns) stay counted. A refused commit opens
    nothing, and only a commit that succeeded calls ``after_commit`` (the heap settler)."""
    answers: list[bool] = []

    async def commit_offsets(self, offsets, start_new_transaction=True) -> bool:  # noqa: ANN001 - faust's signature
        return answers.pop(0)

    monkeypatch.setattr(faust.transport.consumer.Consumer, "_commit_offsets", commit_offsets)

    async def run() -> list[tuple[bool, int, int, bool]]:
        service = ServiceSettings.from_env({})
        app = create_app(service, ClinicalRules.from_settings(RuleSettings.from_env({})), Metrics(), "127.0.0.1:1")
        consumer = app.consumer
        written: list[bool] = []

        async def before_commit() -> bool:
            written.append(True)
            app.commit_window.handled(7)  # a batch between two turns of the write
            consumer._n_acked += 7  # noqa: SLF001
            return True

        app.before_commit = before_commit
        settled: list[int] = []
        app.after_commit = lambda: settled.append(app.commit_window.records)
        seen = []
        for answer in (False, True):
            answers.append(answer)
            app.commit_window.records, consumer._n_acked = 1234, 99  # noqa: SLF001 - faust's count
            app.commit_window.opened_at -= service.commit_interval * 2 / 3  # most of the window gone
            committed = await consumer._commit_offsets({}, True)  # noqa: SLF001 - where every commit path ends
            seen.append((committed, app.commit_window.records, consumer._n_acked,  # noqa: SLF001
                         app.commit_window.seconds_left() > service.commit_interval - 1))
        assert written == [True, True]  # the states were written before each attempt
        assert settled == [7]  # the heap is settled after the commit that succeeded, once
        return seen

    assert asyncio.run(run()) == [(False, 1241, 106, False), (True, 7, 7, True)]


def test_the_consumer_starts_the_monitor_s_periodic_commit_instead_of_faust_s() -> None:
    """faust's timer kept its own phase (monitor.commit_window); mode starts a service's
    tasks by name from the instance, where the worker puts its own."""
    async def tasks() -> list[object]:
        app = create_app(ServiceSettings.from_env({}), ClinicalRules.from_settings(RuleSettings.from_env({})),
                         Metrics(), "127.0.0.1:1")
        return [task.fun for task in app.consumer._get_tasks()]  # noqa: SLF001 - what mode starts

    started = asyncio.run(tasks())
    assert faust.transport.consumer.Consumer._commit_handler.fun not in started  # noqa: SLF001
    assert "commit_in_windows" in {getattr(fun, "__name__", "") for fun in started}


def test_records_wait_for_their_batch_as_raw_bytes_not_as_thousands_of_tracked_objects() -> None:
    """A poll hands over one batch's worth of records and the inbox holds two batches: every
    fetched record turned into objects before its batch is walked by each young collection
    (see create_app), so the rest of a fetch stays in aiokafka's buffer as bytes."""
    async def build(env: dict[str, str]) -> tuple[int, int]:
        service = ServiceSettings.from_env(env)
        app = create_app(service, ClinicalRules.from_settings(RuleSettings.from_env({})), Metrics(), "127.0.0.1:1")
        client = app.consumer._thread._create_worker_consumer(app.transport)  # noqa: SLF001 - what on_start builds
        try:
            return client._max_poll_records, app.inbox.maxsize  # noqa: SLF001 - the inbox comes with app.consumer
        finally:
            await client.stop()  # never started, but it opened a client: unclosed, it warned at exit

    assert asyncio.run(build({})) == (500, 1000)
    assert asyncio.run(build({"MEDSAFETY_BATCH_SIZE": "200"})) == (200, 400)


def test_faust_data_goes_to_the_configured_directory_made_with_its_parents(tmp_path, monkeypatch) -> None:
    """faust puts '<app id>-data' in the working directory; DATA_DIR moves it, so a worker
    started from a read-only directory writes nothing there."""
    monkeypatch.chdir(tmp_path)
    rules = ClinicalRules.from_settings(RuleSettings.from_env({}))
    default = create_app(ServiceSettings.from_env({}), rules, Metrics(), "127.0.0.1:1")
    assert default.conf.datadir == Path("medsafety-data")

    target = tmp_path / "var" / "lib" / "medsafety"
    app = create_app(ServiceSettings.from_env({"MEDSAFETY_DATA_DIR": str(target), "MEDSAFETY_APP_ID": "other"}),
                     rules, Metrics(), "127.0.0.1:1")
    app._create_directories()  # noqa: SLF001 - what faust's on_first_start runs
    assert target.is_dir() and app.conf.appdir.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["var"]  # nothing in the working directory
