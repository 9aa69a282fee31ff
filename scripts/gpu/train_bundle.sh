#!/usr/bin/env bash
# Trains the demo model bundle on the GPU machine (PyTorch there), from the
# compact data of scripts/train/pack_gpu_data.py (carried as train-data/gpu):
# text branch (tokenizer, MoE base, medical LoRA) and image branch in
# parallel, then the fusion head on both, plus the C++ parity golden.
# The bundle comes back as a tar split into 15 MB parts, with the logs;
# scripts/train/train_bundle.sh unpacks it into resources/models/.
#
#   device: bash scripts/gpu/train_bundle.sh      (carry: train-data/gpu)
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-train-data/gpu}
OUT=${OUT:-/tmp/hilum-bundle-out}
B=/tmp/hilum-bundle
rm -rf "$B"; mkdir -p "$B" "$OUT"
PY=${PY:-python3}
[[ -f $DATA/docstrings.json.xz ]] && DOCSTRINGS=$DATA/docstrings.json.xz
pack() { tar -C "$B" -cf - . | split -b 15M - "$OUT/bundle.tar.part-"; ls -la "$OUT"; }
trap pack EXIT
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
$PY scripts/train/train_text.py --notes "$DATA/notes.jsonl" --val-seeds 1360-1399,104800-104999 \
  --out "$B/text" --device "${DEVICE:-cuda}" --threads 4 --layers 3 --batch 32 --base-steps 4000 \
  --base-seconds 230 --lora-steps 3000 --lora-batch 32 --lora-seconds 150 --risk-weight 2 \
  ${DOCSTRINGS:+--docstrings "$DOCSTRINGS"} ${TEXT_ARGS:-} > "$OUT/text.log" 2>&1 &
t=$!
$PY scripts/train/train_vision.py --data "$DATA" --out "$B/vision" --device "${DEVICE:-cuda}" ${VISION_ARGS:-} \
  > "$OUT/vision.log" 2>&1 &
v=$!
wait $v; rv=$?; wait $t; rt=$?
tail -3 "$OUT/vision.log"; tail -3 "$OUT/text.log"
if ((rv || rt)); then echo "train_bundle: text rc=$rt vision rc=$rv"; exit 1; fi
$PY scripts/train/train_fusion.py --data "$DATA" --bundle "$B" --device "${DEVICE:-cuda}" --golden "$B/golden" \
  ${FUSION_ARGS:-} > "$OUT/fusion.log" 2>&1
rf=$?
tail -4 "$OUT/fusion.log"
exit $rf
