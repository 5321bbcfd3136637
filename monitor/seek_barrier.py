"""Only records fetched after faust's seek to the committed offsets move the event-time
clocks.

After every assignment faust resumes the input partitions during its table recovery and
seeks them to their committed offsets only at its end (``Consumer.perform_seek``). What
was fetched before the seek reaches the inbox and is handled, and the seek hands it over
again. Traced at a restart after SIGKILL, with aiokafka's seeks logged: a partition's
fetch position moved 73 -> 5 by that seek, offsets 5-72 were handled after the seek had
completed, then 5 onwards came again. The copies are duplicates, except records the first
pass lacked (it can start past the committed offset: a flow resume clears the inbox) or
whose patient's state had ended in between. Those were late if the first pass had moved
the clocks past them: 39-67 late events per restart in the crash tests, and an alert graded
without the patient's age. A partition's watermark used to stand still for its first
second (the empty re-key topic turned idle only then), which hid this.

Neither dropping what was delivered before the seek (a fetch in flight as the seek landed
had already moved the position past some records, which were then never fetched again)
nor judging by when a batch was *taken* (the early records are mostly taken after the
seek) holds. What decides is the fetch a record came from: faust's fetch loop hands over
every record of one ``_getmany`` call before it makes the next, so a record from a call
that started after the latest seek completed (for the current consumer-group generation)
was fetched from the sought position, in offset order. Every record is handled (its event
is held; a copy that comes again is a duplicate), but only those move the topic clocks,
and the seek restarts the clocks (``on_seek``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


class SeekBarrier:
    """Tells, for each record faust's fetch loop delivers, whether it was fetched after the
    latest seek to the committed offsets of the current generation."""

    def __init__(self) -> None:
        #: The consumer-group generation whose seek completed last (None: none yet).
        self.sought_generation: int | None = None
        #: Seeks completed so far.
        self.seeks = 0
        #: Called as each seek completes (the worker restarts the topic clocks).
        self.on_seek: Callable[[], None] = lambda: None
        self._generation: Callable[[], int] = lambda: 0
        self._fetch_in_order = False  # the fetch being delivered started after the latest seek

    def passed(self) -> bool:
        """The current generation's seek has completed."""
        return self.sought_generation == self._generation()

    def delivering_in_order(self) -> bool:
        """The record being delivered now came from a fetch that started after the latest
        seek, which had completed for the current generation."""
        return self._fetch_in_order

    def sought(self, generation: int, recovered: bool = True) -> None:
        """A seek to the committed offsets completed: the one that ends the recovery of
        ``generation`` if ``recovered``, else one faust's fetch loop made while the flow was
        stopped (a rebalance under way; it still makes what was fetched before it stale)."""
        if recovered:
            self.sought_generation = generation
        self.seeks += 1
        self._fetch_in_order = False  # what the loop still delivers was fetched before it
        self.on_seek()

    def fetching(self, seeks_at_start: int, passed_at_start: bool) -> None:
        """A fetch returned: its records are in order if no seek completed since it started
        and the generation's seek had completed by then."""
        self._fetch_in_order = passed_at_start and seeks_at_start == self.seeks

    def install(self, consumer: Any, generation: Callable[[], int]) -> None:
        """Wrap faust's ``Consumer.perform_seek`` (an instance attribute; its recovery and its
        fetch loop both call it; only the recovery's, made with the flow active, passes the
        generation's barrier) and ``Consumer._getmany`` (each fetch of the loop)."""
        self._generation = generation
        perform_seek: Callable[[], Awaitable[None]] = consumer.perform_seek
        getmany: Callable[..., Awaitable[Any]] = consumer._getmany  # noqa: SLF001

        async def perform_seek_and_note_it() -> None:
            # faust's recovery seeks with the flow resumed; its fetch loop seeks when the
            # flow is stopped, and the generation may already be the next one (aiokafka's
            # thread sets it as the assignment arrives, before the recovery has run)
            sought, recovered = generation(), consumer.flow_active
            await perform_seek()
            self.sought(sought, recovered)

        async def getmany_noting_the_seeks(*args: Any, **kwargs: Any) -> Any:
            seeks, passed = self.seeks, self.passed()
            records = await getmany(*args, **kwargs)
            self.fetching(seeks, passed)
            return records

        consumer.perform_seek = perform_seek_and_note_it
        consumer._getmany = getmany_noting_the_seeks  # noqa: SLF001
