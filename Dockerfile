# ttr-bench in a container, for cluster runs: `ttr` on Debian with torch, git and a C++ compiler.
#
#   docker build -t ttr-bench .                  # CPU torch 2.13.0 (the default)
#   docker build -t ttr-bench:cuda \
#       --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 .   # a CUDA build of torch
#   docker run --rm -v "$PWD/runs:/work/runs" ttr-bench run ldpc nms_baseline --variant smoke
#
# Methods of your own: mount their folder and name it (docs in slurm/README.md):
#   docker run --rm -v "$HOME/methods:/methods" -e TTR_SUBMISSIONS=/methods ttr-bench check my_method
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# The torch build: the version this project pins, from PyTorch's CPU index unless TORCH_INDEX
# names a CUDA one (https://download.pytorch.org/whl/cu<version>: pick one the cluster's driver
# supports and that has this torch version).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Extras of ttr-bench: triton runs the Triton kernels (and their CPU interpreter in `ttr check`).
ARG EXTRAS=triton

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

# git: run records carry the harness's and the submission's commits; g++: torch.compile's CPU
# backend (boosted_nms's compiled kernel).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git g++ \
    && rm -rf /var/lib/apt/lists/*

RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

# A non-editable install: the bundled workloads, submissions and SLURM defaults go with the
# package; the source copy is removed after.
COPY pyproject.toml README.md LICENSE /tmp/ttr-bench/
COPY harness /tmp/ttr-bench/harness
COPY workloads /tmp/ttr-bench/workloads
COPY submissions /tmp/ttr-bench/submissions
RUN pip install "/tmp/ttr-bench[${EXTRAS}]" \
    && rm -rf /tmp/ttr-bench \
    && ttr list > /dev/null

WORKDIR /work
ENTRYPOINT ["ttr"]
CMD ["--help"]
