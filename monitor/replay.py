"""Reading input files for offline replay: canonical NDJSON, FHIR NDJSON, FHIR Bundles.

Files are read lazily and merged by event time (each file may itself be out of order
within the allowed lateness), so memory stays bounded however long the files are. Every
line becomes exactly one :class:`SourceItem`: an event, a rejection, or a deliberate skip,
with its ``FILE:LINE`` location for diagnostics that never quote the input.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .events import AnyEvent
from .fhir import FhirAdapter, is_fhir_resource
from .validation import DEFAULT_MAX_BYTES, Rejection, decode_event


class InputError(Exception):
    """An input file cannot be read at all."""


@dataclass(frozen=True, slots=True)
class SourceItem:
    location: str
    event: AnyEvent | None = None
    rejection: Rejection | None = None
    ignored: str | None = None


def read_file(path: str | Path, adapter: FhirAdapter, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[SourceItem]:
    """Items of one file, in file order. Raises :class:`InputError` if it cannot be opened."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with handle:
        first = _first_content_line(handle)
        handle.seek(0)
        if first is not None and first.lstrip().startswith(b"{") and not _is_json(first):
            yield from _whole_document(path, handle.read(), adapter)
            return
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            yield from _line_items(f"{path}:{number}", line, adapter, max_bytes)


def _first_content_line(handle) -> bytes | None:  # type: ignore[no-untyped-def]
    for raw in handle:
        if raw.strip():
            return raw
    return None


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _line_items(location: str, line: bytes, adapter: FhirAdapter, max_bytes: int) -> Iterator[SourceItem]:
    if len(line) <= max_bytes and b'"resourceType"' in line:
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if is_fhir_resource(obj):
            yield from _fhir_items(location, obj, adapter)
            return
    result = decode_event(line, max_bytes=max_bytes)
    if isinstance(result, Rejection):
        yield SourceItem(location, rejection=result)
    else:
        yield SourceItem(location, event=result)


def _whole_document(path: Path, data: bytes, adapter: FhirAdapter) -> Iterator[SourceItem]:
    location = f"{path}:1"
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        yield SourceItem(location, rejection=Rejection("invalid_json", "file is neither NDJSON nor one JSON document"))
        return
    if is_fhir_resource(obj):
        yield from _fhir_items(location, obj, adapter)
    else:
        yield from _line_items(location, json.dumps(obj).encode(), adapter, len(data) + 1)


def _fhir_items(location: str, resource: dict, adapter: FhirAdapter) -> Iterator[SourceItem]:
    results = adapter.map_resource(resource)
    many = len(results) > 1
    for index, result in enumerate(results):
        where = f"{location}#{index + 1}" if many else location
        yield SourceItem(where, event=result.event, rejection=result.rejection, ignored=result.ignored)


def merge_by_event_time(streams: Iterable[Iterator[SourceItem]]) -> Iterator[SourceItem]:
    """Interleave several files by event time; rejections keep their place in their file."""
    streams = list(streams)
    if len(streams) == 1:
        return streams[0]  # one file: its own order, with no merge keys to compute

    def keyed(stream: Iterator[SourceItem]) -> Iterator[tuple[float, SourceItem]]:
        last = float("-inf")
        for item in stream:
            if item.event is not None:
                last = item.event.occurred_at.timestamp()
            yield last, item

    return (item for _, item in heapq.merge(*(keyed(s) for s in streams), key=lambda pair: pair[0]))


def read_inputs(paths: Iterable[str | Path], adapter: FhirAdapter | None = None) -> Iterator[SourceItem]:
    """All items of all files, merged by event time. Every file is opened up front, so an
    unreadable file fails before any output."""
    adapter = adapter or FhirAdapter()
    paths = list(paths)
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: no such file")
        try:
            with p.open("rb"):
                pass
        except OSError as exc:
            raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    return merge_by_event_time(read_file(path, adapter) for path in paths)
