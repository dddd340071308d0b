"""Can a JAX job tell a lost peer from its own error by asking the coordination service instead of reading the message?

A 2-process ``jax.distributed`` job on 127.0.0.1 (gloo).  Process 1 waits, and the parent
SIGKILLs it while process 0 is inside a collective (``process_allgather``).  Process 0
records the error the collective raised (type, status code, first line, seconds), then
asks the coordination service which processes are alive (``get_live_nodes``, in a thread
bounded by ``--wait`` seconds) and records its answer and how long it took.  Each
scenario runs ``--repeats`` times; a fresh pair of processes each time.

    python experiments/jax_liveness.py --repeats 3 --json experiments/results/jax_liveness.json

Outcome on the development machine (jax 0.10.2, CPU): see docs/training.md, "A job of
several processes".  ``get_live_nodes`` is a rendezvous of the processes the service
still counts; a SIGKILLed peer stays counted until its heartbeat times out, so the query
gives no answer for that long - at the moment a step fails the service does not know yet.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r'''
import json, os, sys, threading, time
pid, port, heartbeat, wait, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
import jax
import numpy as np
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(f"127.0.0.1:{port}", 2, pid, initialization_timeout=60, heartbeat_timeout_seconds=heartbeat)
from jax._src import distributed as jd
from jax.experimental import multihost_utils
multihost_utils.process_allgather(np.asarray([1], np.int32))
record = {}
def dump():
    with open(out, "w") as f:
        json.dump(record, f)
if pid == 1:
    open(out, "w").write("{}")  # the parent's cue: process 1 is about to wait
    time.sleep(600)
time.sleep(0.5)
t0 = time.monotonic()
try:
    multihost_utils.process_allgather(np.asarray([2], np.int32))
    record["collective"] = "ok"
except Exception as exc:
    record.update(collective="failed", error_type=type(exc).__name__,
                  error_code=getattr(exc, "error_code_string", None),
                  message=str(exc).splitlines()[0][:300], error_seconds=round(time.monotonic() - t0, 3))
dump()
answer = {}
def ask():
    try:
        answer["live"] = sorted(jd.global_state.client.get_live_nodes([0, 1]))
    except Exception as exc:
        answer["live"] = f"{type(exc).__name__}: {str(exc)[:200]}"
t1 = time.monotonic()
th = threading.Thread(target=ask, daemon=True)
th.start()
th.join(wait)
record.update(live=answer.get("live", "no answer"), live_seconds=round(time.monotonic() - t1, 3))
dump()
os._exit(0)
'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(heartbeat: int, wait: float) -> dict:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        script = d / "child.py"
        script.write_text(CHILD)
        port = _port()
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        outs = [d / f"p{p}.json" for p in (0, 1)]
        procs = [subprocess.Popen([sys.executable, str(script), str(p), str(port), str(heartbeat), str(wait),
                                   str(outs[p])], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True) for p in (0, 1)]
        deadline = time.monotonic() + 120
        while not outs[1].exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the job did not start")
            time.sleep(0.05)
        time.sleep(0.2)
        procs[1].send_signal(signal.SIGKILL)
        try:
            _, err = procs[0].communicate(timeout=wait + heartbeat + 60)
        except subprocess.TimeoutExpired:
            procs[0].kill()
            _, err = procs[0].communicate()
        procs[1].wait()
        rec = json.loads(outs[0].read_text()) if outs[0].exists() else {}
        rec["exit_code_process_0"] = procs[0].returncode
        rec["aborted_by_the_service"] = "Terminating process because the JAX distributed service" in (err or "")
        rec["heartbeat_timeout_s"] = heartbeat
        rec["wait_s"] = wait
        return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--heartbeat", type=int, default=30, help="heartbeat timeout of the job, seconds")
    ap.add_argument("--wait", type=float, default=10.0, help="how long process 0 waits for get_live_nodes")
    ap.add_argument("--json", type=Path, help="write the records here")
    a = ap.parse_args(argv)
    import jax

    records = []
    for i in range(a.repeats):
        rec = run_once(a.heartbeat, a.wait)
        records.append(rec)
        print(f"run {i}: collective {rec.get('collective')} after {rec.get('error_seconds')} s "
              f"({rec.get('error_type')} {rec.get('error_code')}); live={rec.get('live')} after "
              f"{rec.get('live_seconds')} s; exit {rec['exit_code_process_0']}, aborted by the service: "
              f"{rec['aborted_by_the_service']}", flush=True)
    if a.json:
        a.json.write_text(json.dumps({"jax": jax.__version__, "records": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
