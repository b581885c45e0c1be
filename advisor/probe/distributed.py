"""`--scheduler`: the streaming pass of `partitions` on a Dask cluster.

Each partition is one task: a worker opens the partition's file itself (at the same path as
here: the data must be on a filesystem every worker sees), and returns a small `Partial`: the
p x p sums, the NaN/inf count, the largest value and its share of the sample. The partials are
added up on the workers in a tree (groups of `FAN_IN`, then groups of those, ...), so only one
partial, the whole table's, comes back here. The arithmetic is `partitions.partial` and
`partitions.merge`, the same as `partitions.stream`'s: the sums agree with the local pass to
rounding (the additions happen in another order), and the sample is the same rows, since a
row's sampling key depends only on the seed, its file and its place in the file.

Dask is an optional extra (`pip install 'lr-advisor[dask]'`), imported only here, only when
`--scheduler` is given.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import replace

from advisor.probe.datasource import DataError, one_line, setting
from advisor.probe.partitions import (
    SAMPLE_ROWS,
    Partial,
    Partition,
    Streamed,
    file_numbers,
    finish,
    merge,
    partial,
    sample_bound,
)

FAN_IN = 8  # partials merged by one task of the tree
TIMEOUT = 10  # seconds to reach the scheduler and to wait for a first worker
NEEDS_DASK = "--scheduler needs dask: pip install 'lr-advisor[dask]'"
USAGE = "use an address such as tcp://host:8786, or local or local:N (N workers here)"
SHARED = "the data must be at the same path on every worker (a shared filesystem)"


class SchedulerError(DataError):
    """The cluster cannot be used: the message says why, in one line."""


def timeout() -> float:
    """Seconds to reach the scheduler: LR_ADVISOR_SCHEDULER_TIMEOUT, or 10."""
    return float(setting("LR_ADVISOR_SCHEDULER_TIMEOUT", TIMEOUT))


def parse_scheduler(text: str) -> tuple[str, int | str]:
    """("local", workers) for local or local:N, ("address", address) for a scheduler's
    address (tcp://host:8786, tls://..., or host:port); a ValueError for anything else."""
    text = text.strip()
    if text == "local" or text.startswith("local:"):
        count = text[len("local:") :] if text != "local" else ""
        if count and not (count.isdigit() and int(count) > 0):
            raise ValueError(f"--scheduler {text}: N in local:N is a number of workers, 1 or more")
        return "local", int(count) if count else max(1, min(os.cpu_count() or 1, 8))
    if "://" in text or (":" in text and text.rsplit(":", 1)[1].isdigit()):
        return "address", text
    raise ValueError(f"--scheduler {text}: {USAGE}")


def _distributed():
    try:
        import distributed
    except ImportError:
        raise SchedulerError(NEEDS_DASK) from None
    return distributed


def _checked_value(scheduler: str) -> tuple[str, int | str]:
    """`parse_scheduler`, its complaint as a SchedulerError."""
    try:
        return parse_scheduler(scheduler)
    except ValueError as error:
        raise SchedulerError(str(error)) from None


def check_scheduler(scheduler: str, seconds: float | None = None) -> None:
    """What the command line checks before any work: the value's form, that dask is here,
    and that a scheduler answers at the address. A SchedulerError (one line) if not."""
    kind, where = _checked_value(scheduler)
    distributed = _distributed()
    if kind != "address":
        return

    async def reach() -> None:
        comm = await distributed.comm.connect(where, timeout=seconds or timeout())
        await comm.close()

    try:
        asyncio.run(reach())
    except (OSError, ValueError, TypeError) as error:
        raise SchedulerError(_unreachable(str(where), error)) from None


def _unreachable(address: str, error: Exception) -> str:
    return f"--scheduler {address}: cannot reach a Dask scheduler there ({one_line(error)})"


def local_cluster(workers: int):
    """A LocalCluster of `workers` single-threaded worker processes, without a dashboard
    (its HTTP server on a free port of this machine only) and with its logs silenced."""
    import distributed

    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not 8787: maybe taken
        silence_logs=logging.CRITICAL,
    )


def stream_on_dask(
    parts: list[Partition],
    scheduler: str,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
    fan_in: int = FAN_IN,
    seconds: float | None = None,
) -> Streamed:
    """`partitions.stream` on a Dask cluster: `scheduler` is a scheduler's address, or local /
    local:N for a cluster of N worker processes here, started and closed around the pass.
    The same `Streamed` record; SchedulerError or DataError (one line) when it cannot be."""
    kind, where = _checked_value(scheduler)
    distributed = _distributed()
    seconds = seconds or timeout()
    # the workers open the files themselves: absolute paths, not relative to this directory
    files = file_numbers(parts)
    tasks = [(replace(p, path=os.path.abspath(p.path)), files[p.path]) for p in parts]
    cluster = None
    quiet = _quiet()
    try:
        if kind == "local":
            try:
                cluster = local_cluster(int(where))
            except Exception as error:
                raise SchedulerError(
                    f"--scheduler {scheduler}: cannot start a local cluster ({one_line(error)})"
                ) from None
            target, place = cluster, "a local Dask cluster"
        else:
            target, place = where, f"the Dask cluster at {where}"
        try:
            client = distributed.Client(target, timeout=seconds, set_as_default=False)
        except Exception as error:
            raise SchedulerError(_unreachable(str(where), error)) from None
        with client:
            try:
                client.wait_for_workers(1, timeout=seconds)
            except Exception:
                raise SchedulerError(
                    f"--scheduler {scheduler}: the scheduler has no workers "
                    f"(none joined within {seconds:g} s)"
                ) from None
            workers = len(client.scheduler_info().get("workers", {}))
            bound = sample_bound(parts, sample_rows)
            total = _tree(client, tasks, sample_rows, seed, bound, fan_in)
            if total.moments is not None and total.sample.held < min(
                sample_rows, total.moments.rows
            ):  # fewer rows under the bound than the sample holds (all but impossible): again
                total = _tree(client, tasks, sample_rows, seed, None, fan_in)
    finally:
        if cluster is not None:
            cluster.close()
        quiet.close()
    found = finish(total, parts)
    found.cluster = f"{place} ({workers} worker{'s' if workers != 1 else ''})"
    return found


def _tree(client, tasks, sample_rows: int, seed: int, bound: int | None, fan_in: int) -> Partial:
    """One task per partition, their partials merged on the workers in a tree of `fan_in`
    (no partial comes here but the last); the whole table's partial."""
    if not tasks:
        return Partial.empty(sample_rows)
    level = [
        client.submit(_partial_task, part, file, sample_rows, seed, bound, pure=False)
        for part, file in tasks
    ]
    while len(level) > 1:
        level = [
            client.submit(_merge_task, *level[i : i + fan_in], pure=False)
            for i in range(0, len(level), max(2, fan_in))
        ]
    try:
        return level[0].result()
    except DataError:
        raise
    except ModuleNotFoundError as error:
        raise SchedulerError(
            f"a Dask worker cannot import {error.name or 'a module'}: install the same "
            "lr-advisor, numpy and pyarrow on the workers as here"
        ) from None
    except Exception as error:
        raise SchedulerError(
            f"the Dask cluster failed: {type(error).__name__}: {one_line(error)}"
        ) from None


def _partial_task(
    part: Partition, file: int, sample_rows: int, seed: int, bound: int | None
) -> Partial:
    """On a worker: one partition's partial, with errors a user can act on."""
    try:
        return partial(part, file, sample_rows, seed, bound)
    except DataError:
        raise
    except ImportError as error:
        raise DataError(
            f"{part.path}: the Dask worker on {socket.gethostname()} cannot read it "
            f"({one_line(error)}): install the same lr-advisor, numpy and pyarrow as here"
        ) from None
    except OSError as error:  # most often: the file is not there, on that machine
        raise DataError(
            f"{part.path}: the Dask worker on {socket.gethostname()} cannot open it "
            f"({one_line(error)}); {SHARED}"
        ) from None
    except (ValueError, EOFError) as error:
        raise DataError(
            f"{part.path}: the Dask worker on {socket.gethostname()} cannot read it "
            f"({one_line(error)})"
        ) from None


def _merge_task(*partials: Partial) -> Partial:
    """On a worker: the partials of one node of the tree, merged pairwise."""
    items = list(partials)
    while len(items) > 1:
        pairs = range(0, len(items) - 1, 2)
        merged = [merge(items[i], items[i + 1]) for i in pairs]
        items = merged + ([items[-1]] if len(items) % 2 else [])
    return items[0]


class _quiet:
    """Dask's own loggers quiet while the pass runs: its connection chatter is not for
    lr-advisor's users (errors are reported as one line)."""

    NAMES = ("distributed", "distributed.client", "distributed.scheduler", "tornado")

    def __init__(self) -> None:
        self.levels = {}
        for name in self.NAMES:
            logger = logging.getLogger(name)
            self.levels[name] = logger.level
            logger.setLevel(logging.CRITICAL)

    def close(self) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


__all__ = [
    "FAN_IN",
    "NEEDS_DASK",
    "SchedulerError",
    "check_scheduler",
    "local_cluster",
    "parse_scheduler",
    "sample_bound",
    "stream_on_dask",
]
