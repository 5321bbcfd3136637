"""``medmon``: the command line of the medication-safety monitor.

Offline commands (no broker): ``evaluate`` replays files through the same detectors the
live worker runs; ``mme`` prints morphine milligram equivalents per order and patient.
Diagnostics go to stderr and never contain patient data.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from typing import IO, Sequence

from .alerts import AlertRecord
from .clinical.context import ClinicalRules
from .engine import Engine
from .knowledge import FACTOR_SET_NAMES
from .replay import InputError, read_inputs
from .settings import LOCAL_BROKER, RuleSettings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except InputError as exc:
        print(f"medmon: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"medmon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medmon", description="Medication-safety monitor for hospital pharmacies.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    evaluate = sub.add_parser("evaluate", help="replay event files through the detectors; print alert records")
    _add_input_args(evaluate)
    evaluate.add_argument("--out", metavar="PATH", help="write alert records here (default: stdout)")
    evaluate.set_defaults(run=_evaluate)

    mme = sub.add_parser("mme", help="print daily MME per opioid order and per patient (NDJSON)")
    _add_input_args(mme)
    mme.set_defaults(run=_mme)
    broker = sub.add_parser("broker", help="run the embedded Kafka-compatible broker (Tansu) on loopback")
    broker.add_argument("--port", type=int, default=int(LOCAL_BROKER.rsplit(":", 1)[1]))
    broker.set_defaults(run=_broker)

    worker = sub.add_parser("worker", help="run one monitor worker (several in one group share partitions)")
    worker.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    worker.set_defaults(run=_worker)

    gateway = sub.add_parser("gateway", help="run the HL7 v2 MLLP gateway into the input topics")
    gateway.set_defaults(run=_gateway)

    replay = sub.add_parser("replay", help="publish canonical or FHIR input files to the input topics")
    replay.add_argument("files", nargs="+", metavar="FILE")
    replay.add_argument("--rate", type=float, default=None, help="events per second (default: as fast as possible)")
    replay.set_defaults(run=_replay)

    alerts = sub.add_parser("alerts", help="read alert records from the alerts topic")
    alerts.add_argument("--follow", "-f", action="store_true", help="keep reading new alerts")
    alerts.add_argument("--json", action="store_true", help="print the records as NDJSON")
    alerts.set_defaults(run=_alerts)

    queue = sub.add_parser("queue", help="serve the pharmacist queue (worklist page and API) over the alerts topic")
    queue.set_defaults(run=_queue)

    demo = sub.add_parser("demo", help="embedded broker + worker + the demo feed; alerts printed as they arrive")
    demo.add_argument("--rate", type=float, default=40.0, help="demo events published per second")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    demo.add_argument("--offline", action="store_true",
                      help="no broker: replay the feed through the detectors and print the final queue")
    demo.add_argument("--out", metavar="PATH", help="with --offline: also write every alert record here (NDJSON)")
    demo.set_defaults(run=_demo)

    from .benchmarks.live import add_arguments as add_bench_arguments

    bench = sub.add_parser("bench", help="benchmark the live worker against a bare faust agent (one broker, one run)")
    add_bench_arguments(bench)
    bench.set_defaults(run=_bench)
    return parser


def _add_input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="NDJSON of canonical events or FHIR resources, "
                        "or FHIR Bundle JSON files")
    parser.add_argument("--factor-set", choices=FACTOR_SET_NAMES, default=None,
                        help="MME conversion-factor set (default: MEDSAFETY_FACTOR_SET or cdc-2022)")
    parser.add_argument("--verbose", "-v", action="store_true", help="also report skipped inputs and a summary")


def _run_engine(args: argparse.Namespace, emit) -> Engine:  # type: ignore[no-untyped-def]
    """Feed every input item through one engine; rejected inputs are one stderr line each."""
    rules = ClinicalRules.from_settings(RuleSettings.from_env(factor_set=args.factor_set))
    engine = Engine(rules)
    rejected = ignored = 0
    for item in read_inputs(args.files):
        if item.rejection is not None:
            rejected += 1
            print(f"{item.location}: {item.rejection}", file=sys.stderr)
        elif item.ignored is not None:
            ignored += 1
            if args.verbose:
                print(f"{item.location}: skipped: {item.ignored}", file=sys.stderr)
        elif item.event is not None:
            emit(engine.submit(item.event))
    emit(engine.finish())
    if args.verbose:
        stats = engine.stats
        summary = {
            "events": dict(stats.received), "rejected": rejected, "skipped": ignored,
            "duplicates": stats.duplicates, "late": stats.late, "stale": stats.stale,
            "unmonitored_orders": stats.unmonitored_orders, "alert_records": dict(stats.alerts),
        }
        print(f"summary: {json.dumps(summary, sort_keys=True)}", file=sys.stderr)
    return engine


def _evaluate(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        out: IO[str] = stack.enter_context(open(args.out, "w", encoding="utf-8")) if args.out else sys.stdout

        def emit(records) -> None:  # type: ignore[no-untyped-def]
            for record in records:
                out.write(record.model_dump_json())
                out.write("\n")

        _run_engine(args, emit)
    return 0


def _mme(args: argparse.Namespace) -> int:
    engine = _run_engine(args, lambda records: None)
    out = sys.stdout
    for patient_id in sorted(engine.states):
        state = engine.states[patient_id]
        mme = engine.processor.mme(state, state.clock)
        if not mme.orders:
            continue
        for order in mme.orders:
            out.write(json.dumps({
                "patient_id": patient_id, "order_id": order.order_id, "ingredient": order.ingredient,
                "route": order.route, "daily_dose": order.daily_dose, "daily_dose_unit": order.daily_dose_unit,
                "factor": order.factor, "mme": order.mme, "counted": order.counted,
            }) + "\n")
        out.write(json.dumps({"patient_id": patient_id, "total_mme": round(mme.total, 2),
                              "mme_complete": mme.complete}) + "\n")
    return 0


def _broker_url() -> str:
    from .settings import ServiceSettings

    return ServiceSettings.from_env().bootstrap


def _broker(args: argparse.Namespace) -> int:
    from .broker import EmbeddedBroker

    with EmbeddedBroker(port=args.port) as broker:
        print(f"embedded broker (Tansu, memory storage) on {broker.url}; Ctrl-C stops it", file=sys.stderr)
        try:
            broker.wait()
        except KeyboardInterrupt:
            pass
    return 0


def _worker(args: argparse.Namespace) -> int:
    import logging

    from .broker import check_copartitioned, ensure_topics
    from .kafka_clients import security_options
    from .health import Health, serve
    from .gc_tuning import HeapSettler, tune_garbage_collector
    from .metrics import Metrics
    from .settings import ServiceSettings
    from .worker import create_app, run_worker

    service = ServiceSettings.from_env()
    url = service.bootstrap
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    security = security_options(service)
    ensure_topics(url, [*service.consumed_topics, service.alerts_topic, service.dead_letter_topic],
                  service.partitions, service.replication_factor, security)
    check_copartitioned(url, service.consumed_topics, security=security)
    metrics = Metrics()
    health = Health()
    port = serve(metrics.registry, health, service.metrics_port, service.metrics_host).server_port
    base = f"http://{service.metrics_host}:{port}"
    print(f"medsafety worker: broker {url}, metrics {base}/metrics, health {base}/healthz {base}/readyz",
          file=sys.stderr, flush=True)
    rules = ClinicalRules.from_settings(RuleSettings.from_env())
    app = create_app(service, rules, metrics, url, health)
    tune_garbage_collector(metrics.gc_pauses)
    app.after_commit = HeapSettler(metrics.gc_frozen_garbage).committed  # type: ignore[attr-defined]
    run_worker(app, loglevel=args.loglevel)
    return 0


def _queue(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .broker import ensure_topics
    from .kafka_clients import security_options
    from .queue.service import QueueService, serve
    from .queue.settings import QueueSettings
    from .settings import ServiceSettings

    service = ServiceSettings.from_env()
    settings = QueueSettings.from_env()
    auth = settings.authenticator()  # no login configured: a clear error before any connection
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_topics(service.bootstrap, [service.alerts_topic, service.actions_topic], service.partitions,
                  service.replication_factor, security_options(service))
    queue = QueueService(service, auth)
    announce = lambda url: print(f"medsafety queue: {url} (API {url}api/alerts, metrics {url}metrics)",  # noqa: E731
                                 file=sys.stderr, flush=True)
    asyncio.run(serve(queue, settings.queue_host, settings.queue_port, announce))
    return 0


def _gateway(args: argparse.Namespace) -> int:
    from .gateway import run

    return run()


def _replay(args: argparse.Namespace) -> int:
    from .publisher import PublishError, publish_files

    try:
        sent, rejected = publish_files(args.files, _broker_url(), rate=args.rate, progress=sys.stderr)
    except PublishError as exc:
        print(f"medmon: {exc}", file=sys.stderr)
        return 1
    print(f"published {sent} events ({rejected} rejected)", file=sys.stderr)
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from .publisher import read_alerts

    for record in read_alerts(_broker_url(), follow=args.follow):
        if args.json:
            print(record.model_dump_json(), flush=True)
        else:
            print(format_alert(record), flush=True)
    return 0


def format_alert(r: AlertRecord) -> str:
    """One readable line per alert record (for terminals; the demo's data is synthetic)."""
    return (f"{r.raised_at:%Y-%m-%d %H:%M} {r.status.value:<8} {r.severity.value:<8} {r.kind.value:<28} "
            f"{r.patient_id:<12} {r.summary}")


def _bench(args: argparse.Namespace) -> int:
    from .benchmarks.live import run

    return run(args)


def _demo(args: argparse.Namespace) -> int:
    return _demo_offline(args) if args.offline else _demo_live(args)


def _demo_live(args: argparse.Namespace) -> int:
    """The quick start: embedded broker, one worker process, the demo feed published at
    ``--rate`` events/s, and the alerts topic followed until Ctrl-C (or ``--duration``)."""
    import os
    import subprocess
    import tempfile
    import threading
    import time
    from pathlib import Path

    from .broker import EmbeddedBroker
    from .demo import FEED_PATH
    from .publisher import publish_files, read_alerts
    from .settings import ServiceSettings

    workdir = Path(tempfile.mkdtemp(prefix="medsafety-demo-"))
    env = dict(os.environ, MEDSAFETY_ALLOWED_LATENESS=os.environ.get("MEDSAFETY_ALLOWED_LATENESS", "PT2S"))
    env.pop("MEDSAFETY_BROKER_URL", None)
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        env["MEDSAFETY_BROKER_URL"] = broker.url
        worker_log = workdir / "worker.log"
        worker = subprocess.Popen([sys.executable, "-m", "monitor.cli", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=worker_log.open("wb"))
        queue = None
        try:
            metrics_line = _wait_for_line(worker_log, "metrics http", worker)
            print(f"medsafety demo: embedded broker {broker.url}; {metrics_line.split('metrics ', 1)[1]}")
            queue_env, user, password = _demo_queue_credentials(env, workdir)
            queue_log = workdir / "queue.log"
            queue = subprocess.Popen([sys.executable, "-m", "monitor.cli", "queue"], env=queue_env,
                                     stdout=subprocess.DEVNULL, stderr=queue_log.open("wb"))
            queue_line = _wait_for_line(queue_log, "medsafety queue: http", queue)
            print(f"pharmacist queue: {queue_line.split('medsafety queue: ', 1)[1].split(' ', 1)[0]} "
                  f"(log in as {user} / {password}; API token in {queue_env['MEDSAFETY_QUEUE_TOKEN_FILE']})")
            print(f"publishing {FEED_PATH.name} at {args.rate:g} events/s; alerts follow (Ctrl-C stops)\n",
                  flush=True)
            service = ServiceSettings.from_env(env)
            publisher = threading.Thread(target=publish_files, args=([str(FEED_PATH)], broker.url),
                                         kwargs={"rate": args.rate, "service": service}, daemon=True)
            publisher.start()
            stop_at = time.monotonic() + args.duration if args.duration else None
            for record in read_alerts(broker.url, follow=stop_at is None, service=service,
                                      idle_timeout=max(1.0, args.duration or 0)):
                print(format_alert(record), flush=True)
                if stop_at is not None and time.monotonic() > stop_at:
                    break
        except KeyboardInterrupt:
            print("\nstopping", file=sys.stderr)
        finally:
            for child in (queue, worker):
                if child is None:
                    continue
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
    return 0


def _demo_queue_credentials(env: dict[str, str], workdir) -> tuple[dict[str, str], str, str]:  # type: ignore[no-untyped-def]
    """A one-time login and API token for the demo's queue (random; files readable by the
    owner only): there is no default secret."""
    import os
    import secrets

    from .queue.auth import hash_password

    user, password, token = "pharmacist", secrets.token_urlsafe(12), secrets.token_urlsafe(24)
    users_file, token_file = workdir / "queue-users.json", workdir / "queue-token"
    for path, text in ((users_file, json.dumps({user: hash_password(password)})), (token_file, token)):
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o600)
    queue_env = dict(env, MEDSAFETY_QUEUE_USERS_FILE=str(users_file), MEDSAFETY_QUEUE_TOKEN_FILE=str(token_file),
                     MEDSAFETY_QUEUE_PORT=env.get("MEDSAFETY_QUEUE_PORT", "8080"))
    queue_env.pop("MEDSAFETY_QUEUE_TOKEN", None)
    return queue_env, user, password


def _wait_for_line(path, needle: str, process, timeout: float = 60.0) -> str:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if needle in line:
                return line
        if process.poll() is not None:
            break
        time.sleep(0.1)  # a child process printing its address; nothing to await
    raise RuntimeError(f"{path.stem} did not start; see {path}")


def _demo_offline(args: argparse.Namespace) -> int:
    """Replay the bundled demo feed and print the queue a pharmacist would see: one line
    per alert episode with its latest state (the feed is synthetic: no real patients)."""
    from .demo import FEED_PATH

    latest: dict[str, AlertRecord] = {}
    with ExitStack() as stack:
        out: IO[str] | None = stack.enter_context(open(args.out, "w", encoding="utf-8")) if args.out else None

        def emit(records) -> None:  # type: ignore[no-untyped-def]
            for record in records:
                latest[record.alert_id] = record
                if out is not None:
                    out.write(record.model_dump_json() + "\n")

        namespace = argparse.Namespace(files=[str(FEED_PATH)], factor_set=None, verbose=False)
        engine = _run_engine(namespace, emit)
    print(f"medsafety demo: {sum(engine.stats.received.values())} events replayed from {FEED_PATH.name}; "
          f"{len(latest)} alert episodes")
    print(f"{'status':<9} {'severity':<9} {'kind':<29} {'patient':<12} summary")
    order = {"critical": 0, "high": 1, "warning": 2, "info": 3}
    for r in sorted(latest.values(), key=lambda r: (r.status.value == "resolved", order[r.severity.value], r.raised_at)):
        print(f"{r.status.value:<9} {r.severity.value:<9} {r.kind.value:<29} {r.patient_id:<12} {r.summary[:90]}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
