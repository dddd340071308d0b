"""The conformance runner: every op record on a target, against the float64 reference.

``run(target)`` returns one :class:`Result` per (op record, dtype) with status

* ``pass``    every case within the record's tolerance,
* ``fail``    a case out of tolerance, a wrong shape/dtype, non-finite output,
              an exception, or (core targets) a missing function,
* ``missing`` a port does not provide the op (absent name or ``NotImplementedError``),
* ``skip``    listed in the target's skip file, or float64 on a target without it,
* ``xfail``   listed as ``xfail`` in the skip file and failing as expected (a
              listed op that passes is reported ``fail``, so the list cannot rot).

The reference is the spec: it runs in float64 on the same inputs the target
gets (for a float32 run, the float32-rounded inputs cast back to float64), so
the reported error is the target's own.

Skip files: ``conformance/skips/<target>.txt`` (``<target>`` is the backend name,
``array_api_strict``, or ``port-<module>``), one entry a line::

    # comment
    <op pattern>[@<dtype>]  <reason>          skip: not run
    xfail <op pattern>[@<dtype>]  <reason>    run; failure expected

``<op pattern>`` is a record name, a base name (``cell_step``) or a ``*``/``?``
glob; a reason is required.  An empty file is the goal.

Command line (``trivd conform``)::

    trivd conform [--backend NAME | --port MODULE] [--dtype float32 ...] [--ops PATTERN] [--quick] [--grad]

``--grad`` adds one ``grad:<op>`` row per record and dtype (see
:mod:`conformance.gradients`); skip-file entries for them use the pattern
``grad:<op>``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .records import DTYPES, RECORDS, OpRecord, select
from .results import (
    SKIPS_DIR,
    STATUSES,
    Comparison,
    Result,
    SkipEntry,
    as_records,
    compare,
    conclude,
    load_skips,
    match_skip,
    parse_skips,
    reference_outputs,
)
from .targets import Missing, Target, get_target

__all__ = [
    "Result",
    "Comparison",
    "SkipEntry",
    "STATUSES",
    "SKIPS_DIR",
    "run",
    "run_one",
    "compare",
    "reference_outputs",
    "format_table",
    "summary",
    "quick_subset",
    "parse_skips",
    "load_skips",
    "match_skip",
    "main",
]

def run_one(target: Target, record: OpRecord, dtype: str, skips: Sequence[SkipEntry] = ()) -> Result:
    """Run one record in one dtype on ``target`` (all of its cases)."""
    tol = record.tolerances[dtype]
    res = Result(target.name, record.name, dtype, "pass", tolerance=tol)
    entry = match_skip(skips, record, dtype)
    if entry is not None and not entry.xfail:
        res.status, res.message = "skip", entry.reason
        return res
    if dtype == "float64" and not target.supports_float64:
        res.status, res.message = "skip", f"{target.name} does not support float64"
        return res
    fn = target.resolve(record)
    if fn is None:
        res.status = "fail" if target.missing_is_failure else "missing"
        res.message = f"{target.name} has no function {record.function!r}"
        return res
    problems = []
    abs_errs, rel_errs = [], []
    for case in record.cases:
        try:
            expected = reference_outputs(record, case, dtype)
        except Exception as exc:  # a defect of the suite or the reference, not of the target
            problems.append(f"[{case}] reference raised {type(exc).__name__}: {exc}")
            continue
        args, kwargs = record.inputs(case, dtype)
        try:
            targs, tkwargs = record.map_arrays(args, kwargs, target.to_target)
            outs = record.outputs(target.call(fn, targs, tkwargs))
            foreign = [type(o).__name__ for o in outs if o is not None and not target.is_native(o)]
            if foreign:
                problems.append(f"[{case}] returned {', '.join(foreign)} instead of {target.name} arrays")
                continue
            actual = tuple(target.to_numpy(o) for o in outs)
        except Missing as exc:
            res.status, res.message = "missing", f"{target.name} does not implement it: {exc}"
            return res
        except Exception as exc:
            problems.append(f"[{case}] raised {type(exc).__name__}: {exc}")
            continue
        cmp = compare(actual, expected, tol, dtype)
        if not math.isnan(cmp.max_abs):
            abs_errs.append(cmp.max_abs)
            rel_errs.append(cmp.max_rel)
        if not cmp.ok:
            problems.append(f"[{case}] {cmp.message}")
    return conclude(res, abs_errs, rel_errs, problems, entry)


def run(
    target: Target | str,
    records: Sequence[OpRecord | str] | str | None = None,
    dtypes: Sequence[str] = DTYPES,
    *,
    skips: Sequence[SkipEntry] | str | Path | None = None,
    progress: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Check ``records`` (default: all) on ``target`` in each of ``dtypes``.

    ``target`` is a :class:`~conformance.targets.Target` or a spec for
    :func:`~conformance.targets.get_target`.  ``records`` may be records, names or
    patterns.  ``skips`` is a list of entries, a path to a skip file, or ``None``
    for the target's file in ``conformance/skips/``.
    """
    target = get_target(target)
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f"run(): dtypes must be among {DTYPES}, got {d!r}")
    if skips is None:
        skips = load_skips(target)
    elif isinstance(skips, (str, Path)):
        skips = parse_skips(Path(skips).read_text(encoding="utf-8"), str(skips))
    results = []
    for record in as_records(records):
        for dtype in dtypes:
            r = run_one(target, record, dtype, skips)
            results.append(r)
            if progress is not None:
                progress(r)
    return results


def quick_subset(records: Sequence[OpRecord] | None = None) -> list[str]:
    """Record names for a seconds-long gate: the warps, one cell kind (TSRU_p) and the losses."""
    wanted = [
        "pixelwise_warp",
        "factorized_kernels",
        "expected_flow",
        "combine_flows",
        "cell_step[tsru_p]",
        "d_hinge_loss",
        "g_hinge_loss",
        "projection",
        "mixed_projection",
    ]
    names = {r.name for r in (RECORDS if records is None else records)}
    return [n for n in wanted if n in names]


# ---------------------------------------------------------------------------
# reporting


def summary(results: Sequence[Result]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    return ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s] or s in ("pass", "fail"))


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2e}"


def format_table(results: Sequence[Result], *, width: int = 100) -> str:
    """A plain-text table: op, dtype, status, max abs err, max rel err, tolerance, note; and a summary line."""
    targets = sorted({r.target for r in results})
    show_target = len(targets) > 1
    header = (["target"] if show_target else []) + ["op", "dtype", "status", "max abs err", "max rel err", "tolerance"]
    rows = []
    for r in results:
        tol = r.tolerance.describe() if r.tolerance is not None else "-"
        row = ([r.target] if show_target else []) + [r.op, r.dtype, r.status, _num(r.max_abs), _num(r.max_rel), tol]
        rows.append((row, r.message))
    widths = [max(len(h), *(len(row[i]) for row, _ in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header) + "  note", fmt.format(*("-" * w for w in widths)) + "  ----"]
    for row, msg in rows:
        note = msg if len(msg) <= width else msg[: width - 3] + "..."
        lines.append((fmt.format(*row) + ("  " + note if note else "")).rstrip())
    title = targets[0] if len(targets) == 1 else ", ".join(targets)
    lines.append("")
    lines.append(f"{title or 'no results'}: {summary(results)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trivd conform",
        description="Check trivd_core on a backend, or a third-party port, against the NumPy reference.",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--backend",
        metavar="NAME",
        help="numpy, array_api_strict, jax, torch, xla (default: $TRIVD_BACKEND or numpy)",
    )
    g.add_argument("--port", metavar="MODULE", help="import path of a port module exposing public trivd names")
    p.add_argument(
        "--dtype",
        action="append",
        choices=DTYPES,
        help="dtype to check (repeatable; default: float32 and float64)",
    )
    p.add_argument("--ops", metavar="PATTERN", help="comma-separated record names, base names or * globs")
    p.add_argument("--quick", action="store_true", help="only the seconds-long subset (warps, TSRU_p, losses)")
    p.add_argument("--skip-file", metavar="PATH", help="skip file to use instead of conformance/skips/<target>.txt")
    p.add_argument(
        "--grad",
        action="store_true",
        help="also check gradients (rows grad:<op>): backend autodiff vs finite differences of the reference",
    )
    p.add_argument(
        "--model",
        action="store_true",
        help="run the model-level checks instead (rows model:<check>; G, D, losses, gradients; see conformance.model)",
    )
    p.add_argument("--list", action="store_true", help="list the op records and exit")
    p.add_argument("--width", type=int, default=100, help="truncate notes to this many characters (0: no limit)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``trivd conform``: print the table; 0 when nothing failed, 1 on any failure, 2 on a usage error."""
    args = _parser().parse_args(argv)
    records = select(args.ops)
    if args.quick:
        keep = set(quick_subset())
        records = [r for r in records if r.name in keep]
    if args.list:
        for r in records:
            print(f"{r.name:28s} {r.module}.{r.function}  cases: {', '.join(r.cases)}")
        return 0
    if not records:
        print(f"trivd conform: no op record matches {args.ops!r}", file=sys.stderr)
        return 2
    try:
        if args.port:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            target = get_target(f"port:{args.port}")
        else:
            import backends

            target = get_target(args.backend or backends.default_name())
    except Exception as exc:
        print(f"trivd conform: cannot set up the target: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        skips = (
            parse_skips(Path(args.skip_file).read_text(encoding="utf-8"), args.skip_file) if args.skip_file else None
        )
    except (OSError, ValueError) as exc:
        print(f"trivd conform: bad skip file: {exc}", file=sys.stderr)
        return 2
    dtypes = tuple(dict.fromkeys(args.dtype)) if args.dtype else DTYPES
    if args.model:
        from .model import run_model

        results = run_model(target, dtypes)
        print(format_table(results, width=args.width if args.width > 0 else 10**9))
        return 1 if any(r.failed for r in results) else 0
    from tqdm.auto import tqdm

    total = len(records) * len(dtypes) * (2 if args.grad else 1)
    with tqdm(total=total, desc=f"conform {target.name}", disable=not sys.stderr.isatty()) as bar:
        results = run(target, records, dtypes, skips=skips, progress=lambda r: bar.update(1))
        if args.grad:
            from .gradients import run_gradients

            results += run_gradients(target, records, dtypes, skips=skips, progress=lambda r: bar.update(1))
    print(format_table(results, width=args.width if args.width > 0 else 10**9))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
