#!/usr/bin/env bash
# Every GPU measurement merjax needs, in one call (at most 10 minutes on one H100):
#   bash benchmarks/gpu_suite.sh            # on the GPU machine; writes bench_out/gpu/gpu_suite.md
#   bash benchmarks/gpu_suite.sh --smoke    # the same code paths on CPU with tiny shapes, in seconds
#
# 1. Horn-Schunck on 1024 pairs at 128x128: pairs/s and GB/s against a device-to-device copy's
#    bandwidth measured in the same run (flow_benchmark.py --only_bandwidth).
# 2. Latency: one clip (two frames -> class) and batched clips/s (latency_benchmark.py).
# 3. LOSO training on the paper's shapes (47 folds, 253 samples, 64x64, Vy-3CL, batch 64):
#    Python-driven steps and scanned programs, lax.conv and im2col, loop / vmap / chunks / lax.map;
#    then the paper protocol (150 epochs) with the fastest (train_benchmark.py --paper).
# 4. Memory per run of Vy-3CL and ResNet8 from XLA's analysis on this device (memory_benchmark.py).
# 5. The spotting stream: frames/s and latency on a 200 fps synthetic video (stream_benchmark.py;
#    decoding runs on the CPU, the flows and the network on the device).
# 6. Several processes (only where the machine has 2 or more GPUs; the CPU version in --smoke):
#    1 process x 2 GPUs against 2 processes x 1 GPU, NCCL between them (hosts_benchmark.py).
# Each part's table goes into one markdown file; a part that fails is reported there and the
# suite goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
OUT=${OUT:-bench_out/gpu}
[ $SMOKE = 1 ] && OUT=${OUT_SMOKE:-bench_out/gpu_smoke}
mkdir -p "$OUT"
PY=${PYTHON:-python}
if [ $SMOKE = 0 ]; then
  $PY -m pip install -q --no-deps -e . || exit 1   # the GPU image has jax with CUDA, flax, optax, orbax
  FLOW="--gpu_batch=1024 --bandwidth_size=128 --iters=100"
  LATENCY="--min_time=3 --batches=64,1024,8192"
  TRAIN="--paper --host=lax,im2col --convs=lax,im2col --strategies=loop,vmap,chunked,map --chunk=8"
  MEMORY="--nets=vy-3cl,resnet8"
  STREAM="--seconds=60 --database=samm_lv --size=64"
  HOSTS="--platform=gpu --size=64 --folds=16 --samples=253 --batch=64 --epochs=10"
else
  export JAX_PLATFORMS=cpu
  FLOW="--gpu_batch=8 --bandwidth_size=16 --iters=5"
  LATENCY="--min_time=0.05 --batches=4 --size=16 --nets=vy-1cl"
  TRAIN="--full_run --paper_epochs=2 --net=vy-1cl --size=8 --folds=3 --samples=12 --batch=8 --host=lax --convs=im2col --strategies=loop,chunked --chunk=2"
  MEMORY="--nets=vy-1cl --size=8 --items=24 --batch=8"
  STREAM="--seconds=3 --database=casme3 --size=16"
  HOSTS="--platform=cpu --net=vy-1cl --size=8 --folds=2 --samples=16 --batch=8 --epochs=1"
fi
MD="$OUT/gpu_suite.md"
{
  echo "# merjax GPU suite$([ $SMOKE = 1 ] && echo ' (smoke: CPU, tiny shapes; not a measurement)')"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ); $($PY -c 'import jax; print(jax.__version__, jax.devices())' 2>/dev/null)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
} > "$MD"
part() {  # part TITLE COMMAND...: run it, keep its stdout in the markdown, say how it ended
  local title=$1; shift
  echo "== $title"
  local t0=$SECONDS
  { echo; echo "## $title"; echo; echo '```'; echo "$*"; echo '```'; echo; } >> "$MD"
  if "$@" > "$OUT/part.log" 2>&1; then
    grep -v '^[IWE][0-9]\{4\} ' "$OUT/part.log" >> "$MD"
    echo "($((SECONDS - t0)) s)" >> "$MD"
  else
    echo "FAILED (exit $?) after $((SECONDS - t0)) s; last lines:" >> "$MD"
    tail -20 "$OUT/part.log" >> "$MD"
    FAILED=1
  fi
}
FAILED=0
part "Horn-Schunck bandwidth" $PY benchmarks/flow_benchmark.py --only_bandwidth $FLOW --out="$OUT"
part "Latency: two frames -> class" $PY benchmarks/latency_benchmark.py --baselines=false $LATENCY --out="$OUT"
part "LOSO training programs and the paper protocol" $PY benchmarks/train_benchmark.py $TRAIN --out="$OUT"
part "Memory per run (XLA's analysis on this device)" $PY benchmarks/memory_benchmark.py $MEMORY --out="$OUT"
part "Spotting stream" $PY benchmarks/stream_benchmark.py $STREAM --out="$OUT"
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')  # grep -c prints 0 when there are none
if [ $SMOKE = 1 ] || [ "$GPUS" -ge 2 ]; then
  part "Several processes" $PY benchmarks/hosts_benchmark.py $HOSTS --out="$OUT"
else
  { echo; echo "## Several processes"; echo; echo "skipped: $GPUS GPU(s) here, the part needs 2"; } >> "$MD"
fi
echo "wrote $MD"
exit $FAILED
