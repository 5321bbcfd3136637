"""A single-node Apache Kafka (KRaft: broker and controller in one JVM) on loopback, from the
jars Maven resolves with ``deploy/kafka/pom.xml``. For the test suite and for trying the
monitor against the real broker on a machine without Docker.

    python deploy/kafka/kraft.py            # fetch jars if needed, start, print the URL, Ctrl-C stops
    python deploy/kafka/kraft.py --fetch    # only resolve the jars (CI does this once)

Maven keeps the downloads in ``~/.m2`` (the cache between runs); ``target/lib`` is rebuilt
from it in seconds when the pom changes. Needs ``java`` (17+) and ``mvn`` on PATH.
Standard library only, so it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LIB = HERE / "target" / "lib"
STAMP = LIB / ".pom-sha256"

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
"""


class KafkaUnavailable(RuntimeError):
    """Java or Maven is missing, or the jars could not be resolved."""


def missing_tools() -> list[str]:
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def fetch_jars(quiet: bool = True) -> Path:
    """Resolve the pinned broker's jars into ``target/lib`` (no-op when the pom is unchanged)."""
    missing = missing_tools()
    if missing:
        raise KafkaUnavailable(f"Apache Kafka needs {' and '.join(missing)} on PATH")
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text() == digest:
        return LIB
    shutil.rmtree(LIB, ignore_errors=True)
    command = ["mvn", "-B", "-f", str(POM), "dependency:copy-dependencies"] + (["-q"] if quiet else [])
    result = subprocess.run(command, capture_output=quiet, text=True)
    if result.returncode != 0:
        detail = (result.stdout or "")[-2000:] + (result.stderr or "")[-2000:] if quiet else ""
        raise KafkaUnavailable(f"mvn could not resolve Apache Kafka's jars (exit {result.returncode}) {detail}")
    STAMP.write_text(digest)
    return LIB


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApacheKafka:
    """Format storage, start the JVM, wait until the broker accepts connections; stop it after.

    ``data_dir`` may be kept across :meth:`stop`/:meth:`start` to restart the same broker
    with its log (a broker outage); a new directory is formatted once."""

    def __init__(self, data_dir: Path | None = None, port: int | None = None, heap: str = "512m",
                 log_level: str = "WARN", properties: dict[str, str] | None = None,
                 sasl_users: dict[str, str] | None = None) -> None:
        """``sasl_users`` (name -> password) adds a SASL_SSL listener (:attr:`secure_url`)
        that accepts PLAIN and SCRAM-SHA-512 for them, with a self-signed certificate for
        127.0.0.1 (:attr:`ca_file` is what clients trust)."""
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="medsafety-kafka-"))
        self.port = port or free_port()
        self.controller_port = free_port()
        self.heap = heap
        self.log_level = log_level
        self.extra = properties or {}
        self.sasl_users = sasl_users or {}
        self.secure_port = free_port() if self.sasl_users else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_url(self) -> str:
        return f"127.0.0.1:{self.secure_port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "broker-cert.pem"

    def _make_certificate(self, password: str) -> Path:
        """A self-signed PKCS12 key store for 127.0.0.1 (keytool ships with the JDK)."""
        store = self.data_dir / "broker.p12"
        if not store.is_file():
            subprocess.run(["keytool", "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
                            "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-validity", "30",
                            "-storetype", "PKCS12", "-keystore", str(store), "-storepass", password],
                           check=True, capture_output=True)
            pem = subprocess.run(["keytool", "-exportcert", "-rfc", "-alias", "broker", "-keystore", str(store),
                                  "-storepass", password], check=True, capture_output=True, text=True).stdout
            self.ca_file.write_text(pem)
        return store

    def _security_properties(self) -> dict[str, str]:
        if not self.sasl_users:
            return {}
        password = "medsafety-test-store"
        plain_users = " ".join(f'user_{name}="{secret}"' for name, secret in self.sasl_users.items())
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},SASL_SSL://127.0.0.1:{self.secure_port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},SASL_SSL://127.0.0.1:{self.secure_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self._make_certificate(password)),
            "ssl.keystore.password": password,
        }

    def _scram_arguments(self) -> list[str]:
        arguments = []
        for name, secret in self.sasl_users.items():
            arguments += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={secret}]"]
        return arguments

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def _write_config(self) -> Path:
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            **self._security_properties(),
            **self.extra,
        }
        config = self.data_dir / "server.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        (self.data_dir / "log4j2.properties").write_text(
            LOG4J2.format(log=self.log_path, level=self.log_level))
        return config

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                "-cp", str(LIB / "*"), main, *args]

    def start(self, timeout: float = 90) -> "ApacheKafka":
        fetch_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.data_dir / "log" / "meta.properties").is_file():
            cluster = uuid.uuid4().bytes
            cluster_id = base64.urlsafe_b64encode(cluster).decode().rstrip("=")
            result = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                                               "-c", str(config), *self._scram_arguments()),
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise KafkaUnavailable(f"formatting KRaft storage failed: {result.stdout}{result.stderr}")
        self.process = subprocess.Popen(self._java("kafka.Kafka", str(config)), stdout=subprocess.DEVNULL,
                                        stderr=(self.data_dir / "stderr.log").open("ab"), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KafkaUnavailable(f"Apache Kafka exited with {self.process.returncode}: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)  # the JVM is starting; nothing to await but its listener
        self.stop()
        raise KafkaUnavailable(f"Apache Kafka did not listen on {self.url} within {timeout:.0f}s: {self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        text = ""
        for name in ("stderr.log", "server.log"):
            path = self.data_dir / name
            if path.is_file():
                text += path.read_text(errors="replace")[-chars:]
        return text

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (controlled shutdown, the log stays usable), SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "ApacheKafka":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="only resolve the jars")
    parser.add_argument("--port", type=int, default=None, help="broker port (default: a free one)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the log here (default: a temp dir)")
    args = parser.parse_args(argv)
    try:
        if args.fetch:
            print(fetch_jars(quiet=False))
            return 0
        with ApacheKafka(args.data_dir, args.port) as kafka:
            print(f"Apache Kafka (KRaft) on {kafka.url}; log {kafka.log_path}; Ctrl-C stops", flush=True)
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            try:
                kafka.process.wait() if kafka.process else None
            except KeyboardInterrupt:
                pass
    except KafkaUnavailable as exc:
        print(f"kraft: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
