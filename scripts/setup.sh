#!/usr/bin/env bash
# Idempotent set-up for building and running tada on a fresh Debian machine with Rust, Python 3
# and pip: system packages, libtorch (PyPI torch==2.11.0 in a project-local venv), and the
# `.libtorch` link that `.cargo/config.toml` points LIBTORCH at.
#
#   scripts/setup.sh          what building and running needs
#   scripts/setup.sh --test   plus what the test suite needs (Python tensorboard for read-back)
#
# Downloads are kept in $TADA_CACHE_DIR (default ~/.cache/tada) so a second set-up, or a fresh
# clone on the same machine, downloads nothing; nothing breaks when that cache is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
TEST_PY_PACKAGES=(tensorboard==2.21.0 pillow safetensors==0.8.0)
CUDA_HEADER_PACKAGES=(nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85)
CACHE="${TADA_CACHE_DIR:-$HOME/.cache/tada}"
WHEELS="$CACHE/wheels"
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

log() { printf '[setup] %s\n' "$*" >&2; }

# 1. System packages the build needs (a C++ compiler for torch-sys, readelf, venv support, FFmpeg).
missing=()
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v readelf >/dev/null 2>&1 || missing+=(binutils)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# FFmpeg for the default `video` feature: the libav* dev packages (ffmpeg-sys-next links them),
# libclang for its bindgen step, and the CLI that the tests use to make small videos.
for lib in libavcodec libavformat libavutil libswscale; do
  pkg-config --exists "$lib" 2>/dev/null || missing+=("$lib-dev")
done
compgen -G "/usr/lib/llvm-*/lib/libclang.so" >/dev/null || missing+=(libclang-dev)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. The venv with libtorch. Wheels are downloaded into the cache first, then installed offline
#    from it, so repeated set-ups reuse the 4.6 GB of wheels.
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
pip_install() {  # pip_install SPEC...: download into the wheel cache (no-op when present), install from it
  mkdir -p "$WHEELS"
  .venv/bin/python -m pip download -q --disable-pip-version-check --dest "$WHEELS" "$@"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-index --find-links "$WHEELS" "$@"
}
if ! compgen -G ".venv/lib/python3*/site-packages/torch-${TORCH_VERSION}*.dist-info" >/dev/null; then
  log "installing torch==${TORCH_VERSION} into .venv (about 4.6 GB the first time)"
  pip_install "torch==${TORCH_VERSION}"
fi
# The CUDA wheel of torch carries the CUDA runtime and NCCL headers but not the runtime's
# crt/ and CCCL headers that ProcessGroupNCCL.hpp includes; build.rs needs them to compile
# tada's NCCL process group (headers only, about 3 MB).
cuda_inc=$(ls -d .venv/lib/python3*/site-packages/nvidia/cu13/include 2>/dev/null | head -n 1 || true)
if [ -n "$cuda_inc" ] && [ ! -e "$cuda_inc/crt/host_config.h" -o ! -e "$cuda_inc/cccl/nv/target" ]; then
  log "installing CUDA headers for NCCL: ${CUDA_HEADER_PACKAGES[*]}"
  pip_install --no-deps "${CUDA_HEADER_PACKAGES[@]}"
fi
if [ "$want_test" = 1 ] && ! .venv/bin/python -c 'import tensorboard, PIL, safetensors' >/dev/null 2>&1; then
  log "installing test packages: ${TEST_PY_PACKAGES[*]}"
  pip_install "${TEST_PY_PACKAGES[@]}"
fi

# 3. A stable relative path to libtorch for cargo (the Python minor version varies by machine).
torch_dir=$(cd .venv/lib && ls -d python3*/site-packages/torch | head -n 1)
if [ "$(readlink .libtorch 2>/dev/null)" != ".venv/lib/$torch_dir" ]; then
  ln -sfn ".venv/lib/$torch_dir" .libtorch
fi
log "libtorch: $(readlink .libtorch)"
