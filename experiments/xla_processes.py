"""Can torch_xla 2.9 run a job of several processes on the CPU PJRT device?  (xmp.spawn, then one all_reduce)

Run in the xla environment: ``CPU_NUM_DEVICES=2 python experiments/xla_processes.py [NPROCS]``.
Measured (torch 2.9.0, torch-xla 2.9.0, docs/training.md "Several processes"): without NPROCS each
spawned process's all_reduce waits for 2 local participants, only 1 arrives, and XLA aborts it after
its 10 s rendezvous timeout (the pool reports BrokenProcessPool); with NPROCS=2 spawn refuses
("Unsupported nprocs (2)").  So the CPU client cannot host a multi-process job to test against.
"""
import os
import sys

os.environ.setdefault("PJRT_DEVICE", "CPU")

def work(index):
    import torch
    import torch_xla
    import torch_xla.core.xla_model as xm
    import torch_xla.runtime as xr
    t = torch.ones(2, device=torch_xla.device()) * (index + 1)
    s = xm.all_reduce(xm.REDUCE_SUM, t)
    torch_xla.sync()
    print(f"process {index}: world {xr.world_size()} ordinal {xr.global_ordinal()} sum {s.cpu().tolist()}", flush=True)

if __name__ == "__main__":
    import torch_xla.distributed.xla_multiprocessing as xmp
    try:
        xmp.spawn(work, args=(), nprocs=int(sys.argv[1]) if len(sys.argv) > 1 else None)
    except Exception as exc:
        print("spawn failed:", type(exc).__name__, str(exc)[:500], flush=True)
