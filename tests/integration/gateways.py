"""A ``medmon gateway`` child process, and an MLLP client from the HL7 library (python-hl7's
asyncio ``open_hl7_connection``) for the integration tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from pathlib import Path

import hl7
from hl7.mllp import open_hl7_connection

from tests.integration.workers import Worker, stop_process, wait_for_output

DATA = Path(__file__).resolve().parents[1] / "data" / "hl7"


def sample(name: str) -> bytes:
    return (DATA / f"{name}.hl7").read_bytes()


class Gateway:
    """``medmon gateway`` on the topics of ``worker`` (started or not: its env names them)."""

    def __init__(self, worker: Worker, **settings: str) -> None:
        self.env = dict(worker.env, MEDSAFETY_HL7_PORT="0", MEDSAFETY_HL7_METRICS_PORT="0")
        self.env.update({f"MEDSAFETY_{name.upper()}": value for name, value in settings.items()})
        self.log = worker.log.with_name(worker.log.name.replace("worker", "gateway"))
        self.process: subprocess.Popen[bytes] | None = None
        self.host, self.port, self.metrics_url = "", 0, ""

    def start(self, timeout: float = 60) -> "Gateway":
        self.process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "gateway"], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        match = wait_for_output(self.process, self.log, r"mllp (\S+):(\d+), .* metrics (http://\S+/metrics)",
                                timeout, "gateway")
        self.host, self.port, self.metrics_url = match.group(1), int(match.group(2)), match.group(3)
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def send(self, *messages: bytes, timeout: float = 60) -> list[hl7.Message]:
        """Send ``messages`` in order on one MLLP connection; the ACK of each."""

        async def exchange() -> list[hl7.Message]:
            reader, writer = await open_hl7_connection(self.host, self.port)
            acks = []
            try:
                for message in messages:
                    writer.writeblock(message)
                    await writer.drain()
                    acks.append(await asyncio.wait_for(reader.readmessage(), timeout))
            finally:
                writer.close()
            return acks

        return asyncio.run(exchange())

    def metrics_text(self) -> str:
        return urllib.request.urlopen(self.metrics_url, timeout=10).read().decode()

    def metric(self, name: str) -> float:
        for line in self.metrics_text().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def msa(ack: hl7.Message) -> tuple[str, str]:
    """(MSA-1 acknowledgment code, MSA-2 the control id it answers)."""
    segment = ack.segment("MSA")
    return str(segment(1)), str(segment(2))
