#!/usr/bin/env bash
# One prepared run on a lent GPU machine (issue 21): the `cuda` tests, the whole non-browser suite with CUDA
# visible, then the CUDA benchmarks, each time-boxed, in under 8 minutes together. See docs/performance.md, "CUDA".
#
#   bash benchmarks/gpu.sh prepare   # HERE, once, with registry access: wheels the GPU machine lacks -> .whl/,
#                                    # and .authors-hsnet -> a link to the authors' clone (both git-ignored)
#   bash benchmarks/gpu.sh           # THERE: the device tool's run, carry [".whl", ".authors-hsnet/model",
#                                    # ".authors-hsnet/common"], timeout_s 540
#
# The GPU machine has no network and its own python3 (PyTorch, pytest, pytest-xdist, hypothesis ...; see
# /work/.library/device/KINDS.md): nothing is installed from the internet there. hsnet runs from this checkout
# through PYTHONPATH; the packages that machine lacks (gradio and its server stack, pycocotools, gdown, a newer
# huggingface_hub) come as wheels in .whl/, unpacked into /tmp/site. Without .whl/ the tests that need them fail
# to import and are reported as collection errors; the rest still runs.
#
# Writes under $OUT (what comes back: at most 8 files): summary.txt (each step's exit status and seconds),
# nvidia-smi.txt, cuda-tests.txt, suite.txt, benchmark.txt, and the benchmark's cuda-<gpu>.json/.md (also left in
# benchmarks/results/ there: copy them into benchmarks/results/ here and commit them).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
WHEELS=(gradio==6.31.0 gradio_client==2.7.2 hf-gradio==0.4.1 brotli==1.2.1 fastapi==0.165.0 groovy==0.1.2
        orjson==3.13.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
        pydub==0.25.1 python-multipart==0.0.34 pytz==2026.6 safehttpx==0.1.7 semantic-version==2.10.0
        starlette==1.10.0 tomlkit==0.14.0 uvicorn==0.55.0 pycocotools==2.0.11 gdown==6.5.1 beautifulsoup4==4.15.0
        soupsieve==4.1.4 huggingface_hub==2.4.0)
AUTHORS_CLONE=${HSNET_AUTHORS_CODE:-}
for shared in "$ROOT/../shared" "$ROOT/../../shared"; do  # beside the main checkout, or beside the worktrees
    [ -z "$AUTHORS_CLONE" ] && [ -f "$shared/authors-hsnet/model/hsnet.py" ] && AUTHORS_CLONE=$shared/authors-hsnet
done

if [ "${1:-}" = prepare ]; then
    rm -rf .whl && mkdir -p .whl
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}" || exit 1
    [ -d "$AUTHORS_CLONE/model" ] && ln -sfn "$(cd "$AUTHORS_CLONE" && pwd)" .authors-hsnet
    du -sh .whl; ls -ld .authors-hsnet 2>/dev/null || echo "no authors' clone at $AUTHORS_CLONE: the benchmark will time hsnet alone"
    exit 0
fi

OUT=${OUT:-$ROOT/gpu-run}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HSNET_CACHE_DIR=/tmp/hsnet-cache
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"

step() {  # step NAME SECONDS LOG COMMAND...: run with a time limit, record status and seconds
    local name=$1 limit=$2 log=$3; shift 3
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
    local code=$?
    echo "$name: exit $code after $((SECONDS - start)) s (limit $limit s)$([ $code = 124 ] && echo ', TIMED OUT')" | tee -a "$SUMMARY"
}

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        >> "$SUMMARY" 2>&1 || echo "wheels: install failed" >> "$SUMMARY"
fi
export PYTHONPATH=$ROOT:/tmp/site${PYTHONPATH:+:$PYTHONPATH}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print('torch', torch.__version__, torch.cuda.get_device_name(0))" \
    >> "$SUMMARY" 2>&1 || { echo "no usable CUDA GPU: stopping" >> "$SUMMARY"; exit 1; }
PARALLEL=()
"$PY" -c "import xdist" 2>/dev/null && PARALLEL=(-n 12 --dist loadfile)  # a module's fixtures (servers) once
AUTHORS=()
[ -f .authors-hsnet/model/hsnet.py ] && AUTHORS=(--authors-code .authors-hsnet)

# 1. The cuda tests (issue 21's checks that need a GPU).
step "pytest -m cuda" 90 "$OUT/cuda-tests.txt" "$PY" -m pytest -q -m cuda -p no:cacheprovider -rfEs tests/test_cuda.py
# 2. Everything else that is not a browser test, with the GPU visible (a test that assumes the CPU fails here);
#    -v names each result as it comes, so a run cut short by its limit still says what failed.
step "pytest -m 'not browser and not cuda'" 160 "$OUT/suite.txt" "$PY" -m pytest -v -m "not browser and not cuda" \
    -p no:cacheprovider "${PARALLEL[@]}" --timeout 150 --continue-on-collection-errors -rfE \
    --ignore tests/test_app_browser.py tests
# 3. The CUDA benchmarks: latency at batch 1, throughput at batch 32, training steps, hsnet evaluate.
step "benchmarks/inference.py --cuda-suite" 210 "$OUT/benchmark.txt" "$PY" benchmarks/inference.py --cuda-suite \
    "${AUTHORS[@]}" --device cuda --rounds 5 --warmup 2 --timeout 60
cp benchmarks/results/cuda-*.json benchmarks/results/cuda-*.md "$OUT"/ 2>/dev/null
echo "total: $SECONDS s" | tee -a "$SUMMARY"
