"""Tables of a benchmark run: rows (JSON-able dicts) from the raw per-backend results, and their Markdown.

:func:`build_tables` turns ``results["backends"]`` into five lists of rows
(``limits``, ``decompositions``, ``cells``, ``warps``, ``flops``); every ratio is taken
between two numbers measured in the same run on the same backend, and the paper's
ratio (:mod:`benchmarks.paper`) is put beside it.  :func:`markdown` renders the whole
report.  Missing numbers (an item that failed, was skipped, or a baseline that was
not run) are ``None`` in the rows and ``—`` in the Markdown.
"""

from __future__ import annotations

from . import paper

__all__ = ["step_key", "build_tables", "markdown", "md_table"]

DASH = "—"


def step_key(decomposition: str, cell: str) -> str:
    """Key of one training-step item in ``results["backends"][name]["steps"]``."""
    return f"{decomposition}/{cell}"


def _ok(entry):
    return entry if isinstance(entry, dict) and "error" not in entry and entry.get("median") is not None else None


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def _label(name: str, info: dict) -> str:
    dev = info.get("device")
    return f"{name} ({dev})" if dev else name


def build_tables(results: dict) -> dict:
    """Rows of the five tables from a run's results (see the module docstring)."""
    plan = results["plan"]
    cell0 = plan["config_cell"]
    cell_decomp = plan["cell_decomposition"]
    tables = {"limits": [], "decompositions": [], "cells": [], "warps": [], "flops": []}
    pixels = plan.get("pixels_per_video", {})
    subs = plan.get("sub_discriminators", {})
    for name, info in results["backends"].items():
        if info.get("status") == "skipped":
            continue
        label = _label(name, info)
        micro = info.get("micro") or {}
        limits = micro.get("limits") if "error" not in micro else None
        matmul = (limits or {}).get("matmul", {}).get("GFLOPs")
        if limits:
            tables["limits"].append({
                "backend": label,
                "copy_numpy_GBps": limits["copy_numpy"]["GBps"],
                "copy_backend_GBps": limits["copy_inplace"]["GBps"],
                "copy_backend_what": limits["copy_inplace"]["what"],
                "copy_new_GBps": (limits.get("copy_new") or {}).get("GBps"),
                "matmul_GFLOPs": matmul,
                "matmul_n": limits["matmul"]["n"],
            })
        for op, r in ((micro.get("warps") or {}) if "error" not in micro else {}).items():
            tables["warps"].append({
                "backend": label, "op": op, "shape": r["shape"], "median_ms": 1e3 * r["median"],
                "min_ms": 1e3 * r["min"], "bytes": r["bytes"], "GBps": r["GBps"],
                "fraction_of_copy": r["fraction_of_copy"], "GFLOPs": r["GFLOPs"],
                "fraction_of_copy_new": _ratio(r["GBps"], (limits or {}).get("copy_new", {}).get("GBps")),
            })
        steps = info.get("steps") or {}
        base = _ok(steps.get(step_key(paper.TABLE1_BASELINE, cell0)))
        for d in (plan["decompositions"] if "steps_skipped" not in info else ()):
            r = _ok(steps.get(step_key(d, cell0)))
            err = (steps.get(step_key(d, cell0)) or {}).get("error")
            mem = r["memory"]["peak_bytes"] if r else None
            base_mem = base["memory"]["peak_bytes"] if base else None
            tables["decompositions"].append({
                "backend": label, "decomposition": d, "sub_discriminators": subs.get(d),
                "pixels_per_video": pixels.get(d),
                "median_ms": 1e3 * r["median"] if r else None, "min_ms": 1e3 * r["min"] if r else None,
                "n": r["n"] if r else None,
                "compile_s": r.get("compile_s") if r else None, "first_step_s": r.get("first_step_s") if r else None,
                "memory_MiB": mem / 2**20 if mem is not None else None,
                "memory_method": r["memory"]["method"] if r else None,
                "ratio": _ratio(r and r["median"], base and base["median"]),
                "paper_ratio": paper.decomposition_ratio(d),
                "memory_ratio": _ratio(mem, base_mem),
                "paper_memory_ratio": paper.decomposition_memory_ratio(d),
                "error": err,
            })
        stage = (micro.get("cell_stage") or {}) if "error" not in micro else {}
        stage_base = stage.get(paper.CELL_BASELINE, {}).get("median")
        step_base = _ok(steps.get(step_key(cell_decomp, paper.CELL_BASELINE)))
        for kind in plan["cells"]:
            s = stage.get(kind, {})
            r = _ok(steps.get(step_key(cell_decomp, kind)))
            tables["cells"].append({
                "backend": label, "cell": kind,
                "stage_what": s.get("what"),
                "stage_ms": 1e3 * s["median"] if s.get("median") is not None else None,
                "stage_ratio": _ratio(s.get("median"), stage_base),
                "step_ms": 1e3 * r["median"] if r else None,
                "step_ratio": _ratio(r and r["median"], step_base and step_base["median"]),
                "paper_step_ratio": paper.cell_ratio(kind),
            })
        for key, r in steps.items():
            r = _ok(r)
            if not r or not (r.get("flops") or {}).get("per_step"):
                continue
            f = r["flops"]["per_step"]
            achieved = f / r["median"] / 1e9
            tables["flops"].append({
                "backend": label, "item": key, "flops_per_step": f, "method": r["flops"]["method"],
                "median_s": r["median"], "GFLOPs": achieved, "matmul_GFLOPs": matmul,
                "fraction_of_matmul": _ratio(achieved, matmul),
            })
    return tables


# ---------------------------------------------------------------------------
# Markdown


def _f(v, fmt: str = "{:.2f}") -> str:
    if v is None:
        return DASH
    if isinstance(v, str):
        return v
    return fmt.format(v)


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table (cells already formatted as strings)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(v) -> str:
    return DASH if v is None else f"{100 * v:.1f}%"


def markdown(results: dict) -> str:
    """The whole report as Markdown: header (command, machine, plan) and the five tables."""
    t = results["tables"]
    m = results["machine"]
    plan = results["plan"]
    load = m.get("loadavg_start"), m.get("loadavg_end")
    out = [
        "# trivd benchmark",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {m.get('cpu_model', '?')}, {m.get('cpu_count')} CPUs ({m.get('cpus_usable')} usable), "
        f"{_f(m.get('mem_total_GiB'), '{:.0f}')} GiB RAM; {m.get('platform')}; Python {m.get('python')}; "
        + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v) + ".",
        "",
        "Load average (1/5/15 min) at start " + (" / ".join(f"{x:.2f}" for x in load[0]) if load[0] else DASH)
        + ", at end " + (" / ".join(f"{x:.2f}" for x in load[1]) if load[1] else DASH)
        + f"; wall time {_f(results.get('wall_s'), '{:.0f}')} s.",
        "",
        f"Config `{plan['config']}` with batch {plan['batch']} ({plan['resolution']}x{plan['resolution']}, "
        f"{plan['t_cond']} -> {plan['t_pred']} frames, g_ch {plan['g_ch']}, d_ch {plan['d_ch']}, "
        f"cell {plan['config_cell']}); {plan['repeats']} timed steps after {plan['warmup']} warm-up "
        "(median and min); CPU threads per framework: "
        + (str(plan["threads"]) if plan.get("threads") else "the frameworks' defaults")
        + (f"; the JAX step compiled with XLA `{plan['jax_train_opt']}`" if plan.get("jax_train_opt") else "") + ".",
    ]
    if m.get("env"):
        out += ["", "Environment: " + ", ".join(f"`{k}={v}`" for k, v in sorted(m["env"].items())) + "."]
    if plan.get("reduced"):
        out += ["", "**--quick** (reduced): " + "; ".join(plan["reduced"]) + "."]
    skipped = [f"{n}: {i['reason']}" for n, i in results["backends"].items() if i.get("status") == "skipped"]
    if skipped:
        out += ["", "Skipped backends: " + "; ".join(skipped) + "."]
    errors = []
    for n, i in results["backends"].items():
        if isinstance(i.get("micro"), dict) and "error" in i["micro"]:
            errors.append(f"{n} micro: {i['micro']['error']}")
        for k, r in (i.get("steps") or {}).items():
            if isinstance(r, dict) and "error" in r:
                errors.append(f"{n} step {k}: {r['error']}")
    if errors:
        out += ["", "Failed items: " + "; ".join(errors) + "."]

    out += ["", "## Machine limits (measured by this run)", "",
            "Copy: bytes read + written (`2 * 4 * n`) per second; \"in place\" writes into existing memory "
            "(NumPy `np.copyto`, torch `copy_`, JAX a donated `x + 1`), \"new array\" returns a fresh output as "
            "a pure function does and so also pays for first-touch page faults of the new buffer.",
            "",
            md_table(["backend", "copy GB/s (np.copyto)", "copy GB/s (backend, in place)",
                      "copy GB/s (backend, new array)", "matmul GFLOP/s (float32)"],
                     [[r["backend"], _f(r["copy_numpy_GBps"], "{:.1f}"), _f(r["copy_backend_GBps"], "{:.1f}"),
                       _f(r["copy_new_GBps"], "{:.1f}"), _f(r["matmul_GFLOPs"], "{:.1f}") + f" (n={r['matmul_n']})"]
                      for r in t["limits"]])]

    out += ["", f"## Table 1: discriminator decompositions (cell {plan['config_cell']})", "",
            "Step = 2 D updates + 1 G update (appendix E.3).  Ratios are to `dvdgan_fp` on the same backend "
            "in this run; the paper's ratios are Table 1's MS and GB columns over DVD-GAN-FP's (537 ms, 3.53 GB).",
            "",
            md_table(["backend", "decomposition", "sub-Ds", "pixels/video", "step ms (median / min)", "compile s",
                      "peak MiB", "time ratio", "paper ratio", "mem ratio", "paper mem ratio"],
                     [[r["backend"], r["decomposition"], "+".join(r["sub_discriminators"] or []) or DASH,
                       _f(r["pixels_per_video"], "{:,}"),
                       (f"{r['median_ms']:.0f} / {r['min_ms']:.0f}" if r["median_ms"] is not None else DASH),
                       _f(r["compile_s"], "{:.1f}"),
                       _f(r["memory_MiB"], "{:.1f}") + (f" ({r['memory_method']})" if r["memory_method"] else ""),
                       _f(r["ratio"], "{:.3f}"), _f(r["paper_ratio"], "{:.3f}"), _f(r["memory_ratio"], "{:.3f}"),
                       _f(r["paper_memory_ratio"], "{:.3f}")]
                      for r in t["decompositions"]])]

    shape = plan["cell_stage_shape"]
    out += ["", "## Recurrent units (Table 2 / appendix F)", "",
            f"Stage: `cell_step` over T = {shape['T']} frames at B={shape['B']}, {shape['H']}x{shape['W']}, "
            f"c_in = c_hidden = {shape['C']}, forward+backward through the backend's `value_and_grad` w.r.t. "
            "params, h_0 and x (NumPy: forward only).  Step: the whole training step with "
            f"`config.replace(cell=kind, decomposition='{plan['cell_decomposition']}')` (section 4.3 uses "
            "DVD-GAN-FP_faster).  Ratios to ConvGRU on the same backend; the paper's only per-cell costs are "
            "appendix F's 284 ms (ConvGRU) and 354 ms (TSRU) per step.",
            "",
            md_table(["backend", "cell", "stage ms", "stage ratio", "step ms", "step ratio", "paper step ratio"],
                     [[r["backend"], r["cell"], _f(r["stage_ms"], "{:.1f}") + (" (fwd)" if r["stage_what"] == "forward"
                                                                              else ""),
                       _f(r["stage_ratio"], "{:.2f}"), _f(r["step_ms"], "{:.0f}"), _f(r["step_ratio"], "{:.2f}"),
                       _f(r["paper_step_ratio"], "{:.2f}")] for r in t["cells"]])]

    out += ["", "## Warps vs memory-copy bandwidth", "",
            "Bytes are the minimal traffic (`benchmarks/counting.py`): pixelwise_warp `4*B*H*W*(2C + k^2)`, "
            "factorized_kernels `4*(B*k^2*N + B*H*W*N + B*H*W*k^2)`, k = 3, N = 9; the bandwidths are the same "
            "backend's copies (in place, and into a new array as a pure function's output is).",
            "",
            md_table(["backend", "op", "shape", "ms (median / min)", "MB", "GB/s", "% of copy in place",
                      "% of copy new array", "GFLOP/s"],
                     [[r["backend"], r["op"], r["shape"], f"{r['median_ms']:.2f} / {r['min_ms']:.2f}",
                       f"{r['bytes'] / 1e6:.1f}", f"{r['GBps']:.2f}", _pct(r["fraction_of_copy"]),
                       _pct(r.get("fraction_of_copy_new")), f"{r['GFLOPs']:.2f}"] for r in t["warps"]])]

    out += ["", "## Training step FLOP/s vs matmul", "",
            "FLOPs per step: JAX from XLA's `cost_analysis()` of the compiled D update (x d_steps) and G update "
            "(all HLO ops); torch from `torch.utils.flop_counter.FlopCounterMode` over one step (matmuls and "
            "convolutions, forward and backward; elementwise not counted).",
            "",
            md_table(["backend", "item (decomposition/cell)", "GFLOP/step", "method", "step s", "GFLOP/s",
                      "% of matmul"],
                     [[r["backend"], r["item"], f"{r['flops_per_step'] / 1e9:.2f}", r["method"],
                       f"{r['median_s']:.3f}", f"{r['GFLOPs']:.2f}", _pct(r["fraction_of_matmul"])]
                      for r in t["flops"]])]
    return "\n".join(out) + "\n"
