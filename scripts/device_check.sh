#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU (under 8 minutes on one H100): the CelebA config end to end
# through `dvc repro` on a synthetic 20,000-image CelebA folder (a few epochs, in a temporary copy of this
# checkout), the paper-size training step in fp32 / bf16 / bf16 + channels_last + compile, Inception feature
# throughput and onnxruntime's CUDA provider on the generator -> one JSON with every timing and the projected
# time of the paper's 70 CelebA epochs (benchmarks/device_check.py says what each figure is).
# Without a GPU the same steps run at a tiny size on the CPU (a check that they work, not of speed).
#   bash scripts/device_check.sh [--out device_check.json] [--size auto|gpu|cpu] [--images N] [--epochs E] [--keep DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$here/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  source "$here/.venv/bin/activate"
fi
exec python "$here/benchmarks/device_check.py" "$@"
