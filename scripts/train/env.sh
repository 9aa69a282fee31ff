# Sourced by the training scripts: Debian's python3-torch, deterministic
# threading, and OpenBLAS for PyTorch's matrix products. Debian's torch links
# the generic libblas.so.3; with the reference BLAS alternative (the default
# when no optimised BLAS is installed) its CPU matmuls run at ~0.7 GFLOP/s,
# ten times slower than OpenBLAS. When libopenblas0-pthread is not installed,
# its .deb is fetched with apt-get and unpacked under $DATA/.openblas (for
# these processes only; the system's alternatives are left alone).
PY=${PY:-/usr/bin/python3}
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE
export PYTHONHASHSEED=0
_blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
if [[ $_blas != *openblas* && $_blas != *blis* && $_blas != *mkl* ]]; then
  _ob=${OPENBLAS_DIR:-$(realpath -m "$DATA")/.openblas/usr/lib/x86_64-linux-gnu/openblas-pthread}
  if [[ ! -f $_ob/libblas.so.3 && -z ${OPENBLAS_DIR:-} ]]; then
    mkdir -p "$DATA/.openblas"
    (cd "$DATA/.openblas" && apt-get download libopenblas0-pthread >/dev/null 2>&1 &&
      dpkg -x libopenblas0-pthread_*.deb . ) || echo "env.sh: no OpenBLAS (PyTorch matmuls will be slow)" >&2
  fi
  [[ -f $_ob/libblas.so.3 ]] && export LD_LIBRARY_PATH=$_ob${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
