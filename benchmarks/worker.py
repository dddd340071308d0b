"""Child process of the benchmark runner: one task on one backend, results written as JSON.

``python -m benchmarks.worker SPEC_JSON OUT_PATH``.  The runner (:mod:`benchmarks.run`)
starts one child per training-step item and one per backend for the small items, so
that

* every training step is compiled from scratch (JAX's compile time is real, no
  in-process cache from an earlier item),
* the peak memory of one item is not polluted by the allocations of another (RSS
  high-water marks are per process),
* a crash or a time-out costs one item, not the run.

Progress lines start with ``bench:`` on stderr; the runner shows those and keeps the
rest for error reports.

Tasks (``spec["task"]``):

``micro``  memory-copy bandwidth and matmul FLOP/s of the backend, the two warps
           (``pixelwise_warp``, ``factorized_kernels``), and one recurrent stage per
           cell kind (``T`` ``cell_step`` calls; forward+backward through the
           backend's ``value_and_grad``, forward only on NumPy).
``step``   training steps of ``backends.load(name).engine(config)`` on inputs drawn by
           :class:`trivd_core.train.loop.InputSampler`: first step (compile), warm-up,
           timed steps, peak memory and FLOPs per step.

Peak memory (field ``memory``):

* ``xla_memory_analysis`` (JAX, any device): the engine's two compiled programs (D
  update, G update) report ``argument + output - alias + temp`` bytes; the step's peak
  is the larger of the two (they run one after the other).
* ``cuda_max_memory_allocated`` (torch on CUDA): ``torch.cuda.max_memory_allocated``
  during the timed steps minus ``memory_allocated`` before them.
* ``peak_rss_growth`` (torch on CPU, torch_xla, and recorded for every backend as
  ``rss_growth_bytes``): the high-water mark of the child's resident set over all steps
  (first, warm-up, timed) minus the resident set just before the first step, i.e. after
  the weights, optimiser state and inputs exist.  The high-water mark is reset there by
  writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), so the initialisation does
  not count; where that is not possible, ``ru_maxrss`` (which then includes it) is used
  and ``hwm_reset`` is false.  Measured from the first step because glibc keeps the heap
  a step freed and the next step reuses it: the growth during the timed steps alone
  (``rss_growth_steady_bytes``, also recorded) is close to zero.  It includes one-time
  allocations of the first step (oneDNN primitive caches; for JAX and torch_xla the
  compiler's memory, which is why JAX uses the memory analysis).

FLOPs per step (field ``flops``): JAX: ``cost_analysis()["flops"]`` of the compiled D
update times ``d_steps`` plus that of the G update (XLA's count: every HLO op,
elementwise included).  torch: ``torch.utils.flop_counter.FlopCounterMode`` over one
extra step (matrix products and convolutions, forward and backward; elementwise ops
are not counted).  torch_xla: not counted.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import sys
import time
import traceback

import numpy as np

__all__ = ["run_task", "rss_bytes", "reset_peak_rss", "peak_rss_bytes", "summarize_times"]


def progress(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# memory of this process


def rss_bytes() -> int:
    """Current resident set size of this process in bytes (``/proc/self/statm``; ru_maxrss where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the resident-set high-water mark to the current RSS (Linux ``clear_refs`` 5); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """High-water mark of the resident set (``VmHWM``; ``ru_maxrss`` where unavailable), bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------------------
# timing


def summarize_times(times: list[float]) -> dict:
    """``{"times", "median", "min", "n"}`` of a list of seconds."""
    return {"times": [float(t) for t in times], "median": float(statistics.median(times)), "min": float(min(times)),
            "n": len(times)}


class _Backend:
    """The backend object plus what the benchmarks need on top: a synchronisation and a device label."""

    def __init__(self, name: str):
        import backends

        self.name = name
        self.be = backends.load(name)
        threads = os.environ.get("TRIVD_BENCH_THREADS")
        self.threads = None
        self.xp = self.be.namespace()
        self.cuda = False
        if name == "jax":
            import jax

            self._jax = jax
            d = self.be.device
            self.device = f"{d.platform}:{d.id} ({d.device_kind})"
            self.cuda = d.platform == "gpu"
        elif name in ("torch", "xla"):
            import torch

            self._torch = torch
            if threads:
                torch.set_num_threads(int(threads))
            self.threads = torch.get_num_threads()
            d = self.be.device
            self.cuda = d.type == "cuda"
            self.device = str(d) + (f" ({torch.cuda.get_device_name(d)})" if self.cuda else "")
        else:
            self.device = "cpu"

    def sync(self, out=None):
        if self.name == "jax":
            self._jax.block_until_ready(out)
        elif self.name == "torch" and self.cuda:
            self._torch.cuda.synchronize()
        elif self.name == "xla":
            import torch_xla

            torch_xla.sync()
            if out is not None:
                self.be.to_numpy(out)  # materialise: torch_xla runs lazily
        return out

    def f32(self, a):
        return self.be.asarray(np.asarray(a, np.float32), dtype="float32")

    def jit(self, f, **kwargs):
        return self.be.jit(f, **kwargs)


def _no_sync(out=None):
    return out


def _time(sync, fn, args, repeats: int, warmup: int = 1) -> dict:
    """First call (compile + run), ``warmup - 1`` more, then ``repeats`` timed calls, each synchronised."""
    t0 = time.perf_counter()
    sync(fn(*args))
    first = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        sync(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(fn(*args))
        times.append(time.perf_counter() - t0)
    out = summarize_times(times)
    out["first"] = first
    return out


# ---------------------------------------------------------------------------
# micro: limits, warps, cell stages


def _copy_fns(bk: _Backend, src: np.ndarray):
    """``{"copy_inplace": (fn, what), "copy_new": (fn, what)}`` for the backend (timed with no arguments).

    ``copy_inplace`` writes into memory that already exists (the bandwidth limit);
    ``copy_new`` returns a fresh array, as a pure function does, so it also pays for
    the new output's allocation (first-touch page faults for large arrays on CPU).
    """
    if bk.name == "numpy":
        dst = np.empty_like(src)
        return {"copy_inplace": (lambda: np.copyto(dst, src), "np.copyto(dst, src)"),
                "copy_new": (lambda: np.copy(src), "np.copy(src)")}
    x = bk.f32(src)
    if bk.name == "jax":
        donated = bk.jit(lambda a: a + 1.0, donate_argnums=0)
        fresh = bk.jit(lambda a: a + 1.0)
        box = [bk.f32(src)]

        def inplace():
            box[0] = donated(box[0])
            return box[0]

        return {"copy_inplace": (inplace, "x = jit(x + 1, donate_argnums=0)(x) (output reuses x's buffer)"),
                "copy_new": (lambda: fresh(x), "jit(x + 1)(x) (a new output array)")}
    y = bk.f32(src)
    return {"copy_inplace": (lambda: y.copy_(x), "dst.copy_(src)"), "copy_new": (lambda: x.clone(), "src.clone()")}


def _limits(bk: _Backend, spec: dict) -> dict:
    from . import counting

    rng = np.random.default_rng(0)
    repeats = spec["repeats"]
    out = {}
    n = spec["copy_n"]
    src = rng.standard_normal(n, dtype=np.float32)
    dst = np.empty_like(src)
    r = _time(_no_sync, lambda: np.copyto(dst, src), (), repeats)
    r.update(bytes=counting.copy_bytes(n), elements=n, what="np.copyto(dst, src), float32")
    r["GBps"] = r["bytes"] / r["median"] / 1e9
    out["copy_numpy"] = r
    progress(f"[{bk.name}] numpy copy bandwidth {r['GBps']:.1f} GB/s ({n * 4 / 2**20:.0f} MiB)")
    for key, (fn, what) in _copy_fns(bk, src).items():
        r = _time(bk.sync, fn, (), repeats)
        r.update(bytes=counting.copy_bytes(n), elements=n, what=what + ", float32")
        r["GBps"] = r["bytes"] / r["median"] / 1e9
        out[key] = r
        progress(f"[{bk.name}] {key} {r['GBps']:.1f} GB/s ({what})")
    m = spec["matmul_n"]
    a, b = (bk.f32(rng.standard_normal((m, m), dtype=np.float32)) for _ in range(2))
    fn = bk.jit(lambda a, b: a @ b) if bk.name == "jax" else (lambda a, b: a @ b)
    r = _time(bk.sync, fn, (a, b), repeats)
    r.update(flops=counting.matmul_flops(m, m, m), n=m, what=f"({m}, {m}) @ ({m}, {m}) float32")
    r["GFLOPs"] = r["flops"] / r["median"] / 1e9
    out["matmul"] = r
    progress(f"[{bk.name}] matmul {r['GFLOPs']:.1f} GFLOP/s (n={m})")
    return out


def _warps(bk: _Backend, spec: dict, copy_GBps: float) -> dict:
    from trivd_core import warping

    from . import counting

    rng = np.random.default_rng(1)
    B, H, W, C = spec["warp_shape"]
    k, N = 3, 9
    repeats = spec["repeats"]
    h = bk.f32(rng.uniform(-1, 1, (B, H, W, C)))
    Wk = bk.f32(rng.uniform(0, 1, (B, H, W, k * k)))
    w = bk.f32(rng.uniform(0, 1, (B, k * k, N)))
    S = bk.f32(rng.uniform(0, 1, (B, H, W, N)))
    out = {}
    items = {
        "pixelwise_warp": (lambda h, Wk: warping.pixelwise_warp(h, Wk, k), (h, Wk),
                           counting.warp_bytes(B, H, W, C, k), counting.warp_flops(B, H, W, C, k),
                           f"h ({B},{H},{W},{C}), W ({B},{H},{W},{k * k})"),
        "factorized_kernels": (warping.factorized_kernels, (w, S), counting.factorized_bytes(B, H, W, k, N),
                               counting.factorized_flops(B, H, W, k, N),
                               f"w ({B},{k * k},{N}), S ({B},{H},{W},{N})"),
    }
    for name, (fn, args, nbytes, flops, shape) in items.items():
        f = bk.jit(fn) if bk.name == "jax" else fn
        r = _time(bk.sync, f, args, repeats)
        r.update(bytes=nbytes, flops=flops, shape=shape)
        r["GBps"] = nbytes / r["median"] / 1e9
        r["GFLOPs"] = flops / r["median"] / 1e9
        r["fraction_of_copy"] = r["GBps"] / copy_GBps if copy_GBps else None
        out[name] = r
        progress(f"[{bk.name}] {name} {r['median'] * 1e3:.2f} ms, {r['GBps']:.2f} GB/s "
                 f"({100 * r['fraction_of_copy']:.0f}% of copy)")
    return out


def _cell_stage(bk: _Backend, spec: dict) -> dict:
    from trivd_core import cells

    B, H, W, C = spec["cell_shape"]
    T = spec["T"]
    forward_only = bk.name == "numpy"
    xp = bk.xp
    rng = np.random.default_rng(2)
    h0 = bk.f32(rng.uniform(-1, 1, (B, H, W, C)))
    xs = [bk.f32(rng.uniform(-1, 1, (B, H, W, C))) for _ in range(T)]
    out = {}
    for kind in spec["cells"]:
        params = bk.be.asarray(cells.init_cell(kind, C, C, 3, rng=np.random.default_rng(3)), dtype="float32")

        def loss(p, h, xs, kind=kind):
            total = 0.0
            for x in xs:
                h = cells.cell_step(kind, p, h, x)
                total = total + xp.mean(h)
            return total

        if forward_only:
            fn, what = loss, "forward"
        else:
            fn, what = bk.jit(bk.be.value_and_grad(loss, argnums=(0, 1, 2))), "forward+backward"
        r = _time(bk.sync, fn, (params, h0, xs), spec["repeats"])
        r["what"] = what
        out[kind] = r
        progress(f"[{bk.name}] cell stage {kind}: {what} {r['median'] * 1e3:.1f} ms (first {r['first']:.2f} s)")
    return out


def _micro(spec: dict) -> dict:
    bk = _Backend(spec["backend"])
    res = {"device": bk.device, "threads": bk.threads}
    res["limits"] = _limits(bk, spec)
    res["warps"] = _warps(bk, spec, res["limits"]["copy_inplace"]["GBps"])
    res["cell_stage"] = _cell_stage(bk, spec) if spec["cells"] else {}
    res["cell_stage_shape"] = {"B": spec["cell_shape"][0], "H": spec["cell_shape"][1], "W": spec["cell_shape"][2],
                               "C": spec["cell_shape"][3], "T": spec["T"]}
    return res


# ---------------------------------------------------------------------------
# step: training steps of an engine


class _RandomLoader:
    """Uniform [-1, 1] clips from a seeded generator (the benchmarks time the step, not the data pipeline)."""

    def __init__(self, config, batch: int, seed: int = 0):
        self.config, self.batch, self.rng = config, batch, np.random.default_rng(seed)

    def next_batch(self):
        c = self.config
        return self.rng.uniform(-1, 1, (self.batch, c.t_total, c.resolution, c.resolution, c.channels)).astype(
            np.float32)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        return None


def _jax_programs(engine, ts, inputs) -> dict:
    """Memory and cost analyses of the JAX engine's two compiled programs (``JaxEngine.compiled_programs``)."""
    programs = engine.compiled_programs(ts, inputs)
    out = {}
    for name, comp in programs.items():
        entry = {}
        mem = comp.memory_analysis()
        if mem is not None:
            fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes",
                      "generated_code_size_in_bytes")
            entry.update({f: int(getattr(mem, f, 0) or 0) for f in fields})
            entry["peak_bytes"] = (entry["argument_size_in_bytes"] + entry["output_size_in_bytes"]
                                   - entry["alias_size_in_bytes"] + entry["temp_size_in_bytes"])
        cost = comp.cost_analysis()
        if isinstance(cost, (list, tuple)):
            cost = cost[0] if cost else None
        if cost and "flops" in cost:
            entry["flops"] = float(cost["flops"])
            entry["bytes_accessed"] = float(cost.get("bytes accessed", float("nan")))
        out[name] = entry
    return out


def _torch_flops(engine, ts, inputs) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        engine.step(ts, inputs)
    return float(counter.get_total_flops())


def _step(spec: dict) -> dict:
    from trivd_core.configs import get_config
    from trivd_core.train.loop import InputSampler, loop_rng

    bk = _Backend(spec["backend"])
    if bk.name == "numpy":
        raise ValueError("the numpy backend has no autodiff: training steps are not benchmarked on it")
    config = get_config(spec["config"], batch_size=spec["batch"], decomposition=spec["decomposition"],
                        cell=spec["cell"], **spec.get("overrides", {}))
    label = f"[{bk.name}] step {spec['label']}"
    # JAX: the XLA:CPU optimisation asked for (default: the one `trivd train` compiles for runs of >= 120 steps)
    engine = bk.be.engine(config, train_opt=spec.get("jax_train_opt") or "full") if bk.name == "jax" else \
        bk.be.engine(config)
    t0 = time.perf_counter()
    ts = engine.init(spec.get("seed", 0))
    init_s = time.perf_counter() - t0
    sampler = InputSampler(config, _RandomLoader(config, spec["batch"]), loop_rng(0))
    n_inputs = 1 + spec["warmup"] + spec["repeats"]
    inputs = [sampler.draw() for _ in range(n_inputs)]
    res = {"device": bk.device, "devices": list(engine.devices), "config": config.to_dict(), "init_s": init_s,
           "threads": bk.threads, "jax_train_opt": getattr(engine, "train_opt", None)}

    hwm_reset = reset_peak_rss()
    rss_start = rss_bytes()
    def step(ts_, inp):  # a timed step ends when its metrics are read (an engine may return before: JAX)
        ts_, m = engine.step(ts_, inp)
        return ts_, {k: float(v) for k, v in m.items()}

    t0 = time.perf_counter()
    ts, metrics = step(ts, inputs[0])
    res["first_step_s"] = time.perf_counter() - t0
    progress(f"{label}: first step {res['first_step_s']:.2f} s")
    for i in range(spec["warmup"]):
        ts, metrics = step(ts, inputs[1 + i])
    peak_first = peak_rss_bytes()

    torch_cuda = bk.name == "torch" and bk.cuda
    if torch_cuda:
        bk._torch.cuda.synchronize()
        bk._torch.cuda.reset_peak_memory_stats()
        cuda_base = bk._torch.cuda.memory_allocated()
    hwm_reset = reset_peak_rss() and hwm_reset
    rss_timed = rss_bytes()
    times = []
    for i in range(spec["repeats"]):
        t0 = time.perf_counter()
        ts, metrics = step(ts, inputs[1 + spec["warmup"] + i])
        times.append(time.perf_counter() - t0)
    peak_timed = peak_rss_bytes()
    # From before the first step to the highest point of any step (first, warm-up, timed).
    rss_growth = max(0, max(peak_first, peak_timed) - rss_start)
    res.update(summarize_times(times))
    res["compile_s"] = max(0.0, res["first_step_s"] - res["median"]) if bk.name in ("jax", "xla") else None
    res["losses_finite"] = all(math.isfinite(v) for v in metrics.values())
    res["d_loss"], res["g_loss"] = metrics.get("d_loss"), metrics.get("g_loss")

    memory = {"rss_growth_bytes": rss_growth, "rss_growth_steady_bytes": max(0, peak_timed - rss_timed),
              "rss_start_bytes": rss_start, "hwm_reset": hwm_reset}
    flops = {"method": None, "per_step": None}
    if bk.name == "jax":
        try:
            t0 = time.perf_counter()
            programs = _jax_programs(engine, ts, inputs[0])
            memory["programs"] = programs
            memory["analysis_s"] = time.perf_counter() - t0
            peaks = [p["peak_bytes"] for p in programs.values() if "peak_bytes" in p]
            if peaks:
                memory.update(method="xla_memory_analysis", peak_bytes=max(peaks))
            if all("flops" in p for p in programs.values()):
                flops = {"method": "xla_cost_analysis",
                         "per_step": config.d_steps * programs["d_update"]["flops"] + programs["g_update"]["flops"],
                         "d_update": programs["d_update"]["flops"], "g_update": programs["g_update"]["flops"]}
        except Exception as exc:  # no XLA analysis on this platform: fall back to RSS, say why
            memory["analysis_error"] = f"{type(exc).__name__}: {exc}"
    elif bk.name == "torch":
        if torch_cuda:
            memory.update(method="cuda_max_memory_allocated",
                          peak_bytes=int(bk._torch.cuda.max_memory_allocated() - cuda_base))
        flops = {"method": "torch_flop_counter", "per_step": _torch_flops(engine, ts, inputs[0])}
    if "method" not in memory:
        memory.update(method="peak_rss_growth", peak_bytes=rss_growth)
    res["memory"] = memory
    res["flops"] = flops
    progress(f"{label}: {res['median'] * 1e3:.0f} ms/step (min {res['min'] * 1e3:.0f}, n={res['n']}), "
             f"memory {memory['peak_bytes'] / 2**20:.1f} MiB ({memory['method']})")
    return res


# ---------------------------------------------------------------------------


def run_task(spec: dict) -> dict:
    """Run one task spec (see the module docstring) in this process and return its JSON-able result."""
    task = spec.get("task")
    if task == "micro":
        return _micro(spec)
    if task == "step":
        return _step(spec)
    raise ValueError(f"run_task(): argument 'spec' must have task 'micro' or 'step', got {task!r}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m benchmarks.worker SPEC_JSON OUT_PATH", file=sys.stderr)
        return 2
    spec, out_path = json.loads(argv[0]), argv[1]
    try:
        result = {"ok": True, "result": run_task(spec)}
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    with open(out_path, "w") as f:
        json.dump(result, f)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
