"""Deterministic, resumable, parallel batching of a :class:`~trivd_core.data.base.ClipDataset`.

Order and randomness.  The loader owns one NumPy ``Generator`` (PCG64, seeded with
``seed``).  At the start of every epoch it draws, from that generator, the epoch's
order of clip indices (a permutation, or ``0..N-1`` with ``shuffle=False``) and one
64-bit epoch key.  Sample ``p`` of the epoch (``p = batch * B + row``) is then made
by ``dataset.clip(order[p], rng_p)`` with ``rng_p`` seeded from
``(epoch key, p, attempt)``: the start frame and crop offsets are a pure function of
``(seed, epoch, p)``, whichever worker makes the sample and whenever it runs.  So
the batches do not depend on the number of workers, the worker type or prefetching.

Unreadable sources.  When ``dataset.clip`` raises :class:`SkipClip`, the sample is
made from another index, drawn from a generator seeded with
``(epoch key, p, attempt)`` as well, up to ``max_retries`` times (then a
:class:`DataError` says the dataset looks broken).  Every skip is counted
(``skipped``); the distinct sources - files for a video folder, whatever
``dataset.describe(index)`` names, so the several clip indices of one video count
once - are in ``skipped_sources``, and each is warned about once, when the batch that
needed the substitution is handed out.  The warning is a :class:`DataWarning` only
(``logging.captureWarnings(True)`` routes it to logging), so it prints once.

Resume.  :meth:`state_dict` holds the epoch, the position (batches handed out in
this epoch), the generator state at the start of the epoch, the skip count and a
fingerprint of the dataset.  :meth:`load_state_dict` on a loader built the same way
continues with exactly the batches the saved loader would have produced next.  The
state is plain Python (ints, strings, lists, dicts; the PCG64 state holds 128-bit
ints): store it with ``json`` or ``pickle``.

Parallelism.  ``workers`` threads (``worker_type="thread"``, default) or spawned
processes (``"process"``; the dataset is pickled once per process) make samples;
results are collected in order and ``prefetch`` batches are kept in flight.
``workers=0`` makes every sample in the calling thread.  Threads are the default:
PyAV releases the GIL while demuxing, decoding and scaling, NumPy while rendering,
there is no start-up cost and no copy of the batch between processes; on the
(shared, noisy) 2-core development machine two threads and two processes gave the
same throughput within noise (docs/data.md).  Spawned processes import the main
module again: a script that builds a process loader needs the usual
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import copy
import multiprocessing
import warnings
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from .base import ClipDataset, DataError, DataWarning, SkipClip

__all__ = ["Loader"]


STATE_FORMAT = "trivd.data.loader/1"


@dataclass
class _Plan:
    """One epoch: the generator state it started from, its order and key, the state after."""

    start_state: dict
    order: np.ndarray
    key: int
    end_state: dict


def _sample(dataset: ClipDataset, key: int, position: int, index: int, max_retries: int):
    """Sample ``position`` of an epoch: ``(clip, [(index, reason), ...] skipped on the way)``."""
    skips = []
    n = len(dataset)
    for attempt in range(max_retries + 1):
        clip_seq, alt_seq = np.random.SeedSequence([key, position, attempt]).spawn(2)
        try:
            return dataset.clip(index, np.random.Generator(np.random.PCG64(clip_seq))), skips
        except SkipClip as exc:
            skips.append((index, str(exc)))
            index = int(np.random.Generator(np.random.PCG64(alt_seq)).integers(n))
    reasons = "; ".join(f"{dataset.describe(i)}: {r}" for i, r in skips[-3:])
    raise DataError(
        f"{max_retries + 1} consecutive sources could not be read (last: {reasons}); the dataset looks broken"
    )


_WORKER_DATASET: ClipDataset | None = None


def _init_worker(dataset: ClipDataset) -> None:
    global _WORKER_DATASET
    _WORKER_DATASET = dataset


def _sample_in_worker(key: int, position: int, index: int, max_retries: int):
    assert _WORKER_DATASET is not None
    return _sample(_WORKER_DATASET, key, position, index, max_retries)


class Loader:
    """Batches ``(B, T, H, W, C)`` float32 in ``[-1, 1]`` from a dataset, deterministic and resumable.

    Args:
        dataset: a :class:`ClipDataset`.
        batch_size: clips per batch.
        seed: seed of the loader's generator (order, start frames, crops).
        shuffle: a new random order every epoch (else ``0..N-1``).
        drop_last: drop the last incomplete batch of an epoch (default; keeps shapes static).
        workers: worker threads/processes (0: in the calling thread).
        worker_type: ``"thread"`` or ``"process"`` (spawned processes).
        prefetch: batches kept in flight ahead of the consumer.
        max_retries: substitutions tried for one sample before giving up.
        shard: ``(p, P)``: make only the rows ``[p * B / P, (p + 1) * B / P)`` of every batch
            (``B = batch_size``), for process ``p`` of a job of ``P``.  The order, the epochs
            and every sample are those of the unsharded loader, so the ``P`` shards of a
            batch, stacked in process order, are its batch; the state (:meth:`state_dict`)
            is the same in every process but for the skip counts, which are this process's.

    ``next_batch()`` returns the next batch, crossing epochs; ``for batch in loader``
    runs to the end of the current epoch (a new epoch if the last one is finished);
    ``len(loader)`` is the number of batches per epoch.  Use as a context manager or
    call :meth:`close` to stop the workers.
    """

    def __init__(
        self,
        dataset: ClipDataset,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        workers: int = 2,
        worker_type: str = "thread",
        prefetch: int = 2,
        max_retries: int = 16,
        shard: tuple[int, int] = (0, 1),
    ):
        if int(batch_size) != batch_size or batch_size <= 0:
            raise DataError(f"batch_size must be a positive int, got {batch_size!r}")
        try:
            p, n_shards = (int(v) for v in shard)
        except (TypeError, ValueError):
            raise DataError(f"shard must be a pair (index, count) of ints, got {shard!r}") from None
        if not (n_shards >= 1 and 0 <= p < n_shards and batch_size % n_shards == 0):
            raise DataError(f"shard must be (index, count) with 0 <= index < count and count dividing "
                            f"batch_size={batch_size}, got {shard!r}")
        self.shard = (p, n_shards)
        if worker_type not in ("thread", "process"):
            raise DataError(f"worker_type must be 'thread' or 'process', got {worker_type!r}")
        if workers < 0 or prefetch < 1:
            raise DataError(f"need workers >= 0 and prefetch >= 1, got workers={workers}, prefetch={prefetch}")
        n = len(dataset)
        if n == 0:
            raise DataError("the dataset is empty")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.workers = int(workers)
        self.worker_type = worker_type
        self.prefetch = int(prefetch)
        self.max_retries = int(max_retries)
        self._batches = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self._batches == 0:
            raise DataError(f"the dataset has {n} clips, fewer than batch_size={self.batch_size} (drop_last=True)")
        self.skipped = 0
        self.skipped_sources: set[str] = set()  # dataset.describe(index) of each skipped index
        self._executor: Executor | None = None
        self._pending: deque[tuple[int, int, list]] = deque()
        self._reset(0, 0, np.random.default_rng(self.seed).bit_generator.state)

    # ------------------------------------------------------------------ epochs
    def _reset(self, epoch: int, position: int, start_state: dict) -> None:
        self._cancel_pending()
        self.epoch, self.position = epoch, position
        self._plans = {epoch: self._make_plan(start_state)}
        self._next = self._after(epoch, position - 1)  # the next batch to submit

    def _make_plan(self, start_state: dict) -> _Plan:
        bitgen = np.random.PCG64()
        bitgen.state = start_state
        rng = np.random.Generator(bitgen)
        n = len(self.dataset)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        key = int(rng.integers(0, 2**63))
        return _Plan(start_state, order, key, bitgen.state)

    def _plan(self, epoch: int) -> _Plan:
        if epoch not in self._plans:
            self._plans[epoch] = self._make_plan(self._plan(epoch - 1).end_state)
        return self._plans[epoch]

    def __len__(self) -> int:
        return self._batches

    @property
    def step(self) -> int:
        """Batches handed out since the start (over all epochs)."""
        return self.epoch * self._batches + self.position

    # ------------------------------------------------------------------ production
    def _pool(self) -> Executor:
        if self._executor is None:
            if self.worker_type == "thread":
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="trivd-data")
            else:
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self.dataset,),
                )
        return self._executor

    def _after(self, epoch: int, batch: int) -> tuple[int, int]:
        """The ``(epoch, batch)`` that follows batch ``batch`` of ``epoch``."""
        return (epoch + 1, 0) if batch + 1 == self._batches else (epoch, batch + 1)

    def _rows(self, epoch: int, batch: int) -> list[tuple[int, int, int]]:
        plan = self._plan(epoch)
        lo = batch * self.batch_size
        hi = min(lo + self.batch_size, len(plan.order))
        index, count = self.shard
        if count > 1:  # this process's rows of the batch; positions (and so samples) as without sharding
            rows = self.batch_size // count
            lo, hi = lo + index * rows, min(lo + (index + 1) * rows, hi)
        return [(plan.key, p, int(plan.order[p])) for p in range(lo, hi)]

    def _submit(self) -> None:
        epoch, batch = self._next
        rows = self._rows(epoch, batch)
        pool = self._pool()
        if self.worker_type == "thread":
            futures = [pool.submit(_sample, self.dataset, k, p, i, self.max_retries) for k, p, i in rows]
        else:
            futures = [pool.submit(_sample_in_worker, k, p, i, self.max_retries) for k, p, i in rows]
        self._pending.append((epoch, batch, futures))
        self._next = self._after(epoch, batch)

    def _cancel_pending(self) -> None:
        while self._pending:
            for f in self._pending.popleft()[2]:
                f.cancel()

    def next_batch(self) -> np.ndarray:
        """The next batch ``(B, T, H, W, C)`` float32 (the epoch advances automatically)."""
        self._rollover()
        if self.workers == 0:
            results = [
                _sample(self.dataset, k, p, i, self.max_retries) for k, p, i in self._rows(self.epoch, self.position)
            ]
        else:
            while len(self._pending) < self.prefetch:
                self._submit()
            epoch, batch, futures = self._pending.popleft()
            assert (epoch, batch) == (self.epoch, self.position)
            try:
                results = [f.result() for f in futures]
            except BrokenProcessPool as exc:
                self.close()
                raise DataError(
                    "a data worker process died (a native crash while decoding?); rerun with "
                    "worker_type='thread' or workers=0 to find the file"
                ) from exc
            self._submit()
        self.position += 1
        self._report([s for _, skips in results for s in skips])
        return np.stack([clip for clip, _ in results]).astype(np.float32, copy=False)

    def __iter__(self):
        """Batches to the end of the current epoch (starting the next epoch if this one is done)."""
        self._rollover()
        while self.position < self._batches:
            yield self.next_batch()

    def _rollover(self) -> None:
        """Move to the start of the next epoch if the current one is finished."""
        if self.position == self._batches:
            self._plan(self.epoch + 1)  # from the finished epoch's end state, before that is dropped
            self.epoch, self.position = self.epoch + 1, 0
            self._plans = {e: p for e, p in self._plans.items() if e >= self.epoch}

    def _report(self, skips: list[tuple[int, str]]) -> None:
        for index, reason in skips:
            self.skipped += 1
            source = self.dataset.describe(index)
            if source not in self.skipped_sources:
                self.skipped_sources.add(source)
                msg = (
                    f"skipped unreadable source {source} ({reason}); "
                    f"{self.skipped} skip(s), {len(self.skipped_sources)} distinct source(s) so far"
                )
                warnings.warn(msg, DataWarning, stacklevel=3)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        """Position, generator state and skip count; JSON/pickle-serialisable (see the module doc)."""
        return {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
            "rng": copy.deepcopy(self._plan(self.epoch).start_state),
            "skipped": self.skipped,
            "skipped_sources": sorted(self.skipped_sources),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "dataset": _jsonable(self.dataset.fingerprint()),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (from :meth:`state_dict` of a loader built the same way)."""
        if state.get("format") != STATE_FORMAT:
            raise DataError(f"not a loader state (format {state.get('format')!r}, expected {STATE_FORMAT!r})")
        mine = {"batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last}
        for name, value in mine.items():
            if state[name] != value:
                raise DataError(f"loader state has {name}={state[name]!r}, this loader {value!r}")
        fp = _jsonable(self.dataset.fingerprint())
        if _jsonable(state["dataset"]) != fp:
            raise DataError(f"loader state was saved for another dataset: {state['dataset']} != {fp}")
        self.seed = int(state["seed"])
        self.skipped = int(state["skipped"])
        # names; a state written when indices were kept holds ints: name them the same way
        self.skipped_sources = {s if isinstance(s, str) else self.dataset.describe(int(s))
                                for s in state["skipped_sources"]}
        self._reset(int(state["epoch"]), int(state["position"]), copy.deepcopy(state["rng"]))

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Stop the workers (pending work is cancelled)."""
        self._cancel_pending()
        self._next = self._after(self.epoch, self.position - 1)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        ex = getattr(self, "_executor", None)
        if ex is not None:
            ex.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return (
            f"Loader({self.dataset!r}, batch_size={self.batch_size}, epoch={self.epoch}, "
            f"position={self.position}/{self._batches}, workers={self.workers} {self.worker_type}s)"
        )


def _jsonable(x):
    """Lists for tuples, so a fingerprint compares equal after a JSON round trip."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x
