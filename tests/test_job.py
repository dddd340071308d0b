"""A job of several processes, framework-free: the global batch split over processes, and the loop in step.

* ``trivd_core.replicas``: batch norm's moments and Eq. 15 computed by ``P`` workers, each on
  its slice of the batch, equal the one-process results on the whole batch.  The workers are
  threads exchanging values through a barrier (a ContextVar is per thread, as it is per
  process), so the core's hook is tested without any framework's collectives.
* The loader's shards and the sampler's rows: stacked in process order they are the batch of
  one process, whatever ``P``.
* The loop with ``P`` engines in ``P`` threads (``JobEngine``: ``CountingEngine`` plus
  barrier collectives): process 0 alone writes, a data error in one process stops all after
  the same step, a lost peer gives ``process_lost`` (exit 6) with process 0's last step on disk.
* The CLI's job options: one-line usage errors (exit 2) before anything starts.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from _test_helpers import LOOP_CFG, CountingEngine, loop_loader

from trivd_core import layers, losses, replicas
from trivd_core.data import DataError, Loader, make_dataset
from trivd_core.train import InputSampler, ProcessLost, TrainOptions, load_checkpoint, loop_rng, train
from trivd_core.train.loop import EXIT_CODES


class ThreadJob:
    """``P`` workers (threads) that exchange arrays at a barrier: the collectives of a job, in one process."""

    def __init__(self, count):
        self.count = count
        self._barrier = threading.Barrier(count, timeout=30)
        self._slots = [None] * count

    def exchange(self, index, value):
        """Every worker's ``value``, in worker order (each worker calls it at the same point)."""
        self._slots[index] = value
        self._barrier.wait()
        out = list(self._slots)
        self._barrier.wait()  # nobody overwrites a slot before every worker has read them all
        return out

    def run(self, fn, timeout=60):
        """``[fn(0), ..., fn(count - 1)]``, each in its own thread; the first error is re-raised here (and
        breaks the barrier, so that the other workers do not wait for it)."""
        out, errors = [None] * self.count, []

        def work(i):
            try:
                out[i] = fn(i)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(exc)
                self._barrier.abort()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(self.count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in threads), "a worker of the job hangs"
        if errors:
            raise errors[0]
        return out


class ThreadReplicas(replicas.Replicas):
    def __init__(self, job, index):
        self.job, self.index, self.count = job, index, job.count

    def sum(self, x):
        return np.sum(np.stack(self.job.exchange(self.index, np.asarray(x))), axis=0)

    def gather(self, x):
        return np.concatenate(self.job.exchange(self.index, np.asarray(x)), axis=0)


def _in_workers(count, fn):
    """``[fn(index, replicas) for each worker]``, run concurrently under ``replicas.across``."""
    job = ThreadJob(count)

    def work(i):
        r = ThreadReplicas(job, i)
        with replicas.across(r):
            return fn(i, r)

    return job.run(work)


# float64: the job's moments are sums of per-worker sums, a reassociation of the one-process sums; both are
# within a few ulps of the exact value (n = 48 terms here: rtol 1e-13, far below any real difference).
RTOL64 = 1e-13


@pytest.mark.parametrize("count", [2, 4])
def test_batch_norm_statistics_span_the_job(count):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (8, 3, 4, 4, 5))  # (B, T, H, W, C); |mean| > std: the two-pass form matters
    axes = (0, 2, 3)  # per time step, as the generator's conditional BN
    want_mean, want_var = layers.batch_stats(x, axes)
    rows = 8 // count
    got = _in_workers(count, lambda i, r: layers.batch_stats(x[i * rows:(i + 1) * rows], axes))
    for mean, var in got:
        np.testing.assert_allclose(mean, want_mean, rtol=RTOL64)
        np.testing.assert_allclose(var, want_var, rtol=RTOL64)
    # batch norm without given statistics takes the same path; each worker normalises its own rows
    gain, bias = rng.normal(size=5), rng.normal(size=5)
    want = layers.batch_norm(x, gain, bias, axes)
    got = _in_workers(count, lambda i, r: layers.batch_norm(x[i * rows:(i + 1) * rows], gain, bias, axes))
    np.testing.assert_allclose(np.concatenate(got), want, rtol=RTOL64, atol=1e-13)
    # statistics that do not reduce the batch axis are per sample: no exchange at all (a barrier would deadlock
    # if only some workers called it; none does)
    per_sample = _in_workers(count, lambda i, r: layers.batch_stats(x[i * rows:(i + 1) * rows], (2, 3)))
    np.testing.assert_allclose(np.concatenate([m for m, _ in per_sample]), layers.batch_stats(x, (2, 3))[0],
                               rtol=RTOL64)


def test_the_mixed_head_pairs_every_local_sample_with_the_global_batch():
    rng = np.random.default_rng(1)
    B, T, C, P = 6, 3, 4, 3
    h, y = rng.normal(size=(B, T, C)), rng.normal(size=(B, C))
    params = {"w": rng.normal(size=(C, 1)), "b": rng.normal(size=(1,))}
    want = losses.mixed_projection(h, y, params)  # (B, B, T)
    rows = B // P
    got = _in_workers(P, lambda i, r: losses.mixed_projection(h[i * rows:(i + 1) * rows], y[i * rows:(i + 1) * rows],
                                                              params))
    assert all(g.shape == (rows, B, T) for g in got)
    np.testing.assert_allclose(np.concatenate(got), want, rtol=RTOL64)
    # the hinge loss each worker computes inside the job (its rows against the gathered batch), averaged over the
    # equal slices, is the one-process loss; a worker that paired its rows only with its own samples would
    # compute (rows, rows, T) scores and another loss
    def local_loss(i, r):
        g = losses.mixed_projection(h[i * rows:(i + 1) * rows], y[i * rows:(i + 1) * rows], params)
        return float(losses.d_hinge_loss(g, -0.5 * g))

    job_loss = np.mean(_in_workers(P, local_loss))
    np.testing.assert_allclose(job_loss, losses.d_hinge_loss(want, -0.5 * want), rtol=RTOL64)
    alone = np.mean([float(losses.d_hinge_loss(g, -0.5 * g)) for g in (
        losses.mixed_projection(h[i * rows:(i + 1) * rows], y[i * rows:(i + 1) * rows], params) for i in range(P))])
    assert abs(alone - job_loss) > 1e-3  # without the job's gather the loss differs: the check can fail


def test_one_process_and_no_job_use_no_collectives():
    class Refuses(replicas.Replicas):
        count = 1

        def sum(self, x):
            raise AssertionError("a job of one process exchanges nothing")

        gather = sum

    x = np.random.default_rng(2).normal(size=(4, 3))
    with replicas.across(Refuses()):
        assert replicas.current() is None
        np.testing.assert_array_equal(layers.batch_stats(x, (0,))[0], np.mean(x, axis=0, keepdims=True))
    with pytest.raises(TypeError, match="argument 'replicas' must be a trivd_core.replicas.Replicas or None"):
        with replicas.across(object()):
            pass


# ------------------------------------------------------------------------------------- the data of a job


@pytest.mark.parametrize("count", [2, 4])
def test_loader_shards_stack_to_the_batch_of_one_process(count):
    ds = make_dataset("synthetic", resolution=16, t=3, channels=3, seed=0, length=20)
    with Loader(ds, 4, seed=7, workers=0) as whole:
        want = [whole.next_batch() for _ in range(7)]  # crosses an epoch (5 batches of 4 per epoch)
        want_state = whole.state_dict()
    parts = []
    for p in range(count):
        with Loader(ds, 4, seed=7, workers=1, shard=(p, count)) as shard:
            parts.append([shard.next_batch() for _ in range(7)])
            state = shard.state_dict()
            assert state == want_state  # the state does not depend on the shard: any process resumes any other
    for i in range(7):
        assert all(parts[p][i].shape[0] == 4 // count for p in range(count))
        np.testing.assert_array_equal(np.concatenate([parts[p][i] for p in range(count)]), want[i])


def test_loader_shard_errors():
    ds = make_dataset("synthetic", resolution=16, t=3, channels=3, seed=0, length=20)
    for bad in [(2, 2), (-1, 2), (0, 3), (0, 0), "ab", (0,)]:
        with pytest.raises(DataError, match="shard must be"):
            Loader(ds, 4, shard=bad)


def test_the_sampler_draws_the_global_batch_and_keeps_its_rows():
    def draw(shard):
        with loop_loader(batch=4) if shard is None else _sharded(shard) as loader:
            sampler = InputSampler(LOOP_CFG, loader, loop_rng(3))
            return [sampler.draw() for _ in range(2)]

    def _sharded(shard):
        ds = make_dataset("synthetic", resolution=LOOP_CFG.resolution, t=LOOP_CFG.t_total, channels=3, seed=0,
                          length=64)
        return Loader(ds, 4, seed=0, workers=0, shard=shard)

    whole = draw(None)
    halves = [draw((p, 2)) for p in range(2)]
    for step in range(2):
        w = whole[step]
        for key, axis in (("real", 1), ("z_d", 1), ("z_g", 0)):
            np.testing.assert_array_equal(np.concatenate([h[step][key] for h in halves], axis=axis), w[key])
        for key, axis in (("rand_d", 1), ("rand_g", 0)):
            for k in w[key]:
                np.testing.assert_array_equal(np.concatenate([h[step][key][k] for h in halves], axis=axis), w[key][k])


# ------------------------------------------------------------------------------------- the loop of a job


class JobEngine(CountingEngine):
    """``CountingEngine`` as process ``index`` of a job of threads; its state folds in the global batch."""

    def __init__(self, job, index, *, lose_at=None):
        super().__init__()
        self.job, self.index, self.lose_at = job, index, lose_at
        self.barriers, self.side_barriers = [], []

    process_index = property(lambda self: self.index)
    process_count = property(lambda self: self.job.count)

    def agree(self, code):
        if self.lose_at is not None and self.calls + 1 == self.lose_at:
            raise ProcessLost("agreeing on the next step: another process of the job stopped answering (test)")
        return max(self.job.exchange(self.index, int(code)))

    def barrier(self, name, *, side_work=False):
        self.barriers.append(name)
        if side_work:
            self.side_barriers.append(name)
        self.job.exchange(self.index, name)

    def step(self, ts, inputs):  # every process steps on the global batch, as a partitioned program would
        parts = self.job.exchange(self.index, inputs)
        glob = {k: np.concatenate([p[k] for p in parts], axis=1 if k in ("real", "z_d") else 0)
                for k in ("real", "z_d", "z_g")}
        for key, axis in (("rand_d", 1), ("rand_g", 0)):
            glob[key] = {k: np.concatenate([p[key][k] for p in parts], axis=axis) for k in parts[0][key]}
        return super().step(ts, glob)


def _job_run(tmp_path, count, steps, *, bad_loader=None, resume=False, run="job"):
    """``count`` JobEngines training in ``count`` threads on one run directory: ``(results, engines)``."""
    job = ThreadJob(count)
    engines = [JobEngine(job, i) for i in range(count)]

    def work(i):
        ds = make_dataset("synthetic", resolution=LOOP_CFG.resolution, t=LOOP_CFG.t_total, channels=3, seed=0,
                          length=64)
        loader = Loader(ds, 4, seed=0, workers=0, shard=(i, count))
        if bad_loader is not None and bad_loader[0] == i:
            inner, n = loader.next_batch, [0]

            def next_batch():
                n[0] += 1
                if n[0] == bad_loader[1]:
                    raise DataError("a source vanished (test)")
                return inner()

            loader.next_batch = next_batch
        opts = TrainOptions(run_dir=tmp_path / run, steps=steps, seed=0, log_every=1, sample_every=2,
                            ckpt_every=2, keep=5, n_samples=2, progress=False)
        with loader:
            return train(engines[i], LOOP_CFG, loader, opts, resume=resume, log=lambda m: None)

    return job.run(work), engines


def test_a_job_trains_like_one_process_and_process_0_alone_writes(tmp_path):
    one = train(CountingEngine(), LOOP_CFG, loop_loader(batch=4), TrainOptions(
        run_dir=tmp_path / "one", steps=4, seed=0, log_every=1, sample_every=2, ckpt_every=2, keep=5, n_samples=2,
        progress=False), log=lambda m: None)
    results, engines = _job_run(tmp_path, 2, 4)
    assert [r.status for r in results] == ["done", "done"] and all(r.step == 4 for r in results)
    a, meta_a = load_checkpoint(tmp_path / "one" / "checkpoints")
    b, meta_b = load_checkpoint(tmp_path / "job" / "checkpoints")
    np.testing.assert_array_equal(b["g_params"]["w"], a["g_params"]["w"])  # the same global batches
    assert meta_b["loader"] == meta_a["loader"] and meta_b["rng"] == meta_a["rng"]
    # one writer: one record per step, one config.json naming the job, one set of checkpoints and samples
    recs = [json.loads(line) for line in (tmp_path / "job" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "job" / "config.json").read_text())["processes"] == 2
    assert one.exit_code == results[0].exit_code == 0
    assert engines[1].barriers == engines[0].barriers == [
        "trivd: start", "trivd: checkpoint 2", "trivd: side work 2", "trivd: checkpoint 4", "trivd: side work 4",
        "trivd: end"]
    # process 0's side work (checkpoint, samples) is waited for at side-work barriers
    assert engines[1].side_barriers == ["trivd: checkpoint 2", "trivd: side work 2", "trivd: checkpoint 4",
                                        "trivd: side work 4"]
    assert not (tmp_path / "job" / ".lock").exists()
    # a checkpoint of the job restores on one process (and on 4): the state is the job's
    res4, _ = _job_run(tmp_path, 4, 6, resume=True)
    res1 = train(CountingEngine(), LOOP_CFG, loop_loader(batch=4), TrainOptions(
        run_dir=tmp_path / "job", steps=8, seed=0, log_every=1, sample_every=2, ckpt_every=2, keep=5, n_samples=2,
        progress=False), resume=True, log=lambda m: None)
    assert res4[0].step == 6 and res1.step == 8


def test_a_data_error_in_one_process_stops_every_process_after_the_same_step(tmp_path):
    # process 1's 5th batch fails: batches 1-2 are step 1 (d_steps = 2), 3-4 step 2, so step 3 is not taken
    results, _ = _job_run(tmp_path, 2, 6, bad_loader=(1, 5))
    assert [r.status for r in results] == ["data_error", "data_error"]
    assert [r.step for r in results] == [2, 2]
    assert "a source vanished" in results[1].message
    assert "another process of the job could not load its data" in results[0].message
    assert load_checkpoint(tmp_path / "job" / "checkpoints")[1]["step"] == 2  # process 0 saved the last step
    assert json.loads((tmp_path / "job" / "status.json").read_text())["status"] == "data_error"


def test_a_lost_process_stops_with_exit_6(tmp_path):
    class Lone(JobEngine):
        process_count = property(lambda self: 2)

        def agree(self, code):
            if self.calls == 3:
                raise ProcessLost("agreeing on the next step: another process of the job stopped answering (test)")
            return int(code)

        def barrier(self, name, *, side_work=False):
            self.barriers.append(name)

        def step(self, ts, inputs):
            return CountingEngine.step(self, ts, inputs)

    eng = Lone(ThreadJob(1), 0)
    ds = make_dataset("synthetic", resolution=LOOP_CFG.resolution, t=LOOP_CFG.t_total, channels=3, seed=0, length=64)
    with Loader(ds, 4, seed=0, workers=0, shard=(0, 2)) as loader:
        res = train(eng, LOOP_CFG, loader, TrainOptions(run_dir=tmp_path / "r", steps=10, seed=0, log_every=1,
                                                        sample_every=100, ckpt_every=100, n_samples=2, progress=False),
                    log=lambda m: None)
    assert res.status == "process_lost" and res.exit_code == EXIT_CODES["process_lost"] == 6 and res.step == 3
    assert "another process of the job stopped answering" in res.message
    assert "restart every process with --resume" in res.message
    assert load_checkpoint(tmp_path / "r" / "checkpoints")[1]["step"] == 3
    assert "trivd: end" not in eng.barriers  # nobody to meet at the end


def test_a_loader_of_another_shard_is_refused(tmp_path):
    eng = JobEngine(ThreadJob(2), 1)
    with pytest.raises(ValueError, match=r"process 1 of 2 needs a loader of its shard"):
        train(eng, LOOP_CFG, loop_loader(batch=4), TrainOptions(run_dir=tmp_path / "r", steps=1, progress=False),
              log=lambda m: None)


# ------------------------------------------------------------------------------------- the CLI's options


@pytest.mark.parametrize("argv, message", [
    (["--coordinator", "127.0.0.1:1234"], "--coordinator, --num-processes and --process-id go together"),
    (["--num-processes", "2", "--process-id", "0"], "go together"),
    (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"], "--coordinator must be HOST:PORT"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "--process-id must lie in 0 .. 1"),
    (["--num-processes", "0", "--coordinator", "h:1", "--process-id", "0"], "--num-processes must be an integer >= 1"),
    (["--collective-timeout", "0"], "--collective-timeout must be an integer >= 1"),
    (["--collective-timeout", "30", "--backend", "torch"], "--collective-timeout is for a job of several processes"),
])
def test_cli_job_usage_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    from trivd.cli import main

    code = main(["train", "--run-dir", str(tmp_path / "r"), "--skip-conformance", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1], err
    assert not (tmp_path / "r").exists()
