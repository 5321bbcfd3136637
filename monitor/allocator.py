"""The C allocator's environment of a worker process: transparent huge pages for malloc.

A worker's heap at a census of 100,000 is some 700 MB, and every event touches a cold
patient's objects somewhere in it; with 4 KiB pages nearly every such touch also misses
the TLB. glibc (2.35 and later) asks the kernel for transparent huge pages on the memory
it maps when ``GLIBC_TUNABLES`` holds ``glibc.malloc.hugetlb=1``. Python's own allocator
keeps objects of up to 512 bytes in its arenas, which this does not reach; what it does
reach is what Python hands to malloc: dict key tables, list arrays, the patients' stored
records (about 1 KB each), fetched record batches.

Measured offline (stop 32: ``LiveProcessor.handle`` over 400,000 events after the census
warm-up, the two configurations at once, one per core, us an event): at 100,000 patients
167.4 with it against 174.2 without (-3.9%); at 1,000 patients 132.2 against 133.6 (an
A/A pair of the same configuration differed by 1.1%). ``PYTHONMALLOC=malloc``, which sends
every object through malloc and so onto huge pages, was as fast at 100,000 (161.9 against
162.3 for this tunable alone) and 7% slower at 1,000 (157.5 against 146.6): not used.

The tunable is read by the dynamic loader when a process starts, so it cannot be set from
inside the worker: whatever starts one passes :func:`worker_environment` (the bench, the
demo), and the container image sets the same variable. Where the kernel has transparent
huge pages off (``never``) or glibc is older, the tunable does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The glibc tunable a worker runs with (see the module docstring).
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the worker's allocator tunable added to ``GLIBC_TUNABLES``; tunables
    already there are kept, and one already setting ``glibc.malloc.hugetlb`` wins."""
    env = dict(environ)
    tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    name = HUGE_PAGES_TUNABLE.split("=", 1)[0]
    if not any(t.split("=", 1)[0] == name for t in tunables):
        tunables.append(HUGE_PAGES_TUNABLE)
    env["GLIBC_TUNABLES"] = ":".join(tunables)
    return env
