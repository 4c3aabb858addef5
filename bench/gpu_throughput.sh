#!/usr/bin/env bash
# The GPU half of bench/train_throughput.py, in one go: a random-init ~1.07B Llama (SmolLM2 tokenizer),
# then project vs the TRL reference recipe with QLoRA (NF4, bf16 compute) at the recipe's micro-batch 4
# and at 16, and plain bf16 LoRA at 16. Random weights measure speed and memory as well as real ones.
#
#   bash bench/gpu_throughput.sh [OUT_DIR]      # env: PYTHON, MODEL_DIR, TOKENIZER, DATASET, STEPS
#
# Each configuration writes its own JSON under OUT_DIR (default bench/results); a failed one is
# reported and the others still run. Needs CUDA, bitsandbytes and (for the fused kernels) liger-kernel.
set -uo pipefail
PY=${PYTHON:-python3}
OUT=${1:-bench/results}
MODEL_DIR=${MODEL_DIR:-/tmp/llama-1b-random}
TOKENIZER=${TOKENIZER:-data/models/SmolLM2-135M-Instruct}
STEPS=${STEPS:-30}
mkdir -p "$OUT"
if [ ! -f "$MODEL_DIR/config.json" ]; then
  $PY bench/train_throughput.py --model "$TOKENIZER" --make-model-1b "$MODEL_DIR" || exit 1
fi
common=(--model "$MODEL_DIR" --device cuda --steps "$STEPS")
[ -n "${DATASET:-}" ] && common+=(--dataset "$DATASET")
failed=0
run() {  # name, then train_throughput.py arguments
  local name=$1; shift
  echo "===== $name ($(date +%T))"
  $PY bench/train_throughput.py "${common[@]}" "$@" --out "$OUT/train_throughput_cuda_$name.json" || failed=1
}
# most telling first: a device lease may end before the last one
run qlora_b16 --load-in-4bit --batch-size 16 --variants project,reference,project_shared_prefix
run lora_bf16_b16 --batch-size 16 --variants project,reference,project_shared_prefix
run qlora_b4 --load-in-4bit --batch-size 4
exit $failed
