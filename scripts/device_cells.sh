#!/usr/bin/env bash
# The long runs on one lent GPU, side by side within one call (prepared in session 33, whose
# loan was refused: not yet run on a GPU). The 2-D cells' nets are far too small to fill the
# GPU alone, so every cell runs at once, each a 5-seed population program under
# scripts.reproduce, stopped at BUDGET_MINUTES (its curve so far -> <cell>.partial.json); the
# Stacked MNIST runs (full DCGAN protocol, 100,000 steps) beside them, if SM is set.
#
# Here, once, for Stacked MNIST (a GPU image has no TFDS; the digits travel as .npz):
#   python -m scripts.prepare_data --dataset=mnist5k --export_arrays
#   mkdir -p .devdata && grep -qx '/.devdata/' .git/info/exclude || echo /.devdata/ >> .git/info/exclude
#   cp -r ~/tensorflow_datasets/arrays ~/tensorflow_datasets/aegan_jax .devdata/
# Then one device call (timeout_s 600 leaves ~8 min of training after start-up):
#   BUDGET_MINUTES=7 SM="gan pack2 bigan veegan" bash scripts/device_cells.sh   (carry .devdata)
# (SM may also name ae, the autoencoder row, and the AE strategies: mdgan vaegan aae ebgan began.)
# Everything comes back in $OUT/results.tgz: docs/results/cells/*.json, the runs' metrics.
set -u
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; BUDGET=${BUDGET_MINUTES:-7}; SM=${SM:-}; PY=${PY:-python3}
SPC=${SPC:-1000}  # steps per compiled call (a lax.scan on GPU; keep 1 on CPU, where it unrolls)
CELLS=${CELLS-"pacgan_grid_gan pacgan_ring_gan pacgan_grid_gan_pack2 pacgan_ring_gan_pack2 pacgan_grid_gan_pack4 pacgan_ring_gan_pack4 pacgan_grid_bigan pacgan_ring_bigan"}
nvidia-smi -L 2>/dev/null
$PY -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())" || exit 1
mkdir -p /tmp/logs "$OUT"
# Fail fast: 20 steps of the costliest cell kind, with evaluations, before the long runs.
$PY -m scripts.reproduce --only=pacgan_grid_bigan --root=/tmp/smoke --out=/tmp/smoke_out \
  --seeds=2 --extra=steps=20,steps_per_call=5 --budget_minutes=3 > /tmp/logs/smoke.log 2>&1 \
  || { tail -40 /tmp/logs/smoke.log; exit 1; }
echo "smoke ok: $(ls /tmp/smoke_out)"
start=$(date +%s)
for c in $CELLS; do
  $PY -m scripts.reproduce --only="$c" --budget_minutes="$BUDGET" --extra=steps_per_call=$SPC \
    > "/tmp/logs/$c.log" 2>&1 &
done
for s in $SM; do
  # ae: the autoencoder row of docs/results/stacked_mnist_conv.md (10,000 AE steps, 100-component
  # code mixture) before the protocol's adversarial steps; any other name is --strategy=<name>.
  case $s in
    pack2) extra=--pack=2 ;; gan) extra= ;;
    ae) extra="--strategy=ae_pretrain --latent_dist=auto --pretrain_steps=10000 --ae_lr_decay=true --code_components=100 --code_fit_restarts=3" ;;
    *) extra=--strategy=$s ;;
  esac
  timeout "$(( ${BUDGET%.*} * 60 ))" $PY -m experiments.train \
    --flagfile=experiments/presets/protocols/stacked_mnist_veegan.flags $extra \
    --data_dir=.devdata --eval_every=10000 --eval_metrics=modes --steps_per_call=$(( SPC < 100 ? SPC : 100 )) \
    --workdir="runs/sm_full_$s" > "/tmp/logs/sm_$s.log" 2>&1 &
done
while [ -n "$(jobs -r)" ]; do
  sleep 60; echo "t=$(( $(date +%s) - start ))s"
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
  for c in $CELLS; do echo "$c $(grep -h '"phase": "eval"' runs/cells/$c/member_00/metrics.jsonl 2>/dev/null | tail -1 | cut -c1-150)"; done
  for s in $SM; do echo "sm_$s $(grep -h '"phase": "eval"' runs/sm_full_$s/metrics.jsonl 2>/dev/null | tail -1 | cut -c1-150)"; done
done
for f in /tmp/logs/*.log; do echo "== $f"; tail -2 "$f" | cut -c1-300; done
tar czf "$OUT/results.tgz" --exclude='checkpoints' --exclude='tensorboard' --exclude='samples' \
  runs docs/results/cells /tmp/logs 2>/dev/null
ls -la "$OUT"
