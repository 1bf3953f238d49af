#!/bin/bash
# The GPU checks of a device lease, in one run (docs/performance.md#gpu): the CUDA tests, the
# ldpc check-node kernels and the LIF kernels against the device's copy bandwidth, and
# `ttr check` of the two submissions with Triton kernels (kernel parity and two steps through the
# referee and the athlete, on the GPU). Results go to $OUT (default ./gpu-results).
# Peer and project packages missing on the machine can travel as wheels in .whl/ (pure-python:
# submitit, mnist1d, spikingjelly, snntorch); they are installed into /tmp/site.
set -u
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site" PYTHONUNBUFFERED=1 TTR_CACHE_DIR=/tmp/ttr-cache
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name(0))"
timeout 200 python3 -m pytest -q -p no:cacheprovider -rs tests/test_min_sum_kernels.py \
  tests/snn/test_lif_kernels.py tests/ldpc/test_gf2.py tests/ldpc/test_channel.py \
  tests/ldpc/test_fast_decoder.py 2>&1 | tail -25 | tee "$OUT/pytest.txt"
timeout 150 python3 benchmarks/min_sum_gpu.py --out "$OUT" 2>&1 | tail -30
timeout 200 python3 benchmarks/lif_throughput.py --devices cuda --batch 256 --neurons 16384 \
  --T 8,32 --out "$OUT" 2>&1 | tail -30
for s in boosted_nms bptt_surrogate; do
  timeout 120 python3 -m harness.cli check "$s" 2>&1 | tail -15
done 2>&1 | tee "$OUT/check.txt"
