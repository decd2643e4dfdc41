#!/usr/bin/env bash
# The GPU runs that issue 5 still needs, in two parts that each fit one 10-minute call of a lent
# GPU machine (its README: 30 minutes of device time a session, so two full calls, not many small).
#
#   bash bench/gpu_session.sh 1   # versions, CUDA tests, throughput at batch 128, the whole test suite
#   bash bench/gpu_session.sh 2   # throughput at batch 512, FID parity, NCCL + sync-BN + CUDA-graph CLI runs
#   bash bench/gpu_session.sh 3   # optional: which part of the fast path buys what (batch 128)
#
# Run it from the repository root. MNIST: copy the four *-ubyte.gz files of ../shared/data/MNIST/raw
# into .mnist/MNIST/raw (git-ignored) and carry `.mnist`; torchvision checks their MD5 and unpacks
# them offline. Every benchmark appends its section (device, versions, date, exact command) to
# $RESULTS; after each step that file and the part's log are copied to $OUT, so whatever finished
# comes back even if a later step runs out of time. One failing step does not stop the others.
#
# QUICK=1 runs the same steps with tiny settings on the CPU: a check of this script, no figures.
set -u
part=${1:?usage: bash bench/gpu_session.sh 1|2|3}
PY=${PY:-python3}
QUICK=${QUICK:-0}
export GANLIB_DATA=${GANLIB_DATA:-$PWD/.mnist}
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/out}
RESULTS=${RESULTS:-bench/RESULTS.md}
RUNS=${RUNS:-runs/gpu_session}
mkdir -p "$OUT" "$RUNS"
LOG="$OUT/part$part.log"

step() {  # step SECONDS COMMAND...: run COMMAND with a time limit, log it, carry on whatever it returns
    local limit=$1; shift
    echo "+ [$(date -u +%H:%M:%S), limit ${limit}s] $*" | tee -a "$LOG"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    echo "[exit ${PIPESTATUS[0]}]" | tee -a "$LOG"
    if [ -f "$RESULTS" ]; then cp "$RESULTS" "$OUT/RESULTS.md"; fi
}

if [ "$QUICK" = 1 ]; then
    DEV=(--device cpu --threads 1)
    WINDOWS=(--steps 2 --repeats 2 --warmup 3)
    FID=(--steps 20 --seeds 0 --n-samples 500)
    TRAIN=(--device cpu --batch-size 32 --no-progress); TRAIN_STEPS=20
    TORCHRUN=(--nproc_per_node=2); SYNC_BN=()  # SyncBatchNorm has no CPU kernel
else
    DEV=()
    WINDOWS=(--steps 100 --repeats 7 --warmup 30)
    FID=(--steps 3000 --seeds 0,1,2)
    TRAIN=(--batch-size 128 --no-progress); TRAIN_STEPS=600
    TORCHRUN=(--nproc_per_node=1); SYNC_BN=(--sync-bn)  # one GPU: NCCL, DDP and SyncBatchNorm at world size 1
fi

# every part: each call may get a fresh machine (the last one goes back after 30 s idle), so
# download=True checks the carried .gz files against torchvision's MD5s and unpacks them (no network)
case "$part" in 1|2|3)
    step 120 "$PY" -c "from ganlib.data import load_mnist; [print(s, load_mnist(s)[0].shape) for s in ('train', 'test')]"
esac

case "$part" in
1)
    step 30 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo 'no nvidia-smi'"
    step 60 "$PY" -c "import sys, torch, torchvision, ganlib; print(sys.version.split()[0], torch.__version__, torchvision.__version__, ganlib.__version__, 'cuda', torch.cuda.is_available())"
    # the CUDA-only tests (host syncs, graph capture, lr changes under a graph) before the figures
    [ "$QUICK" = 1 ] || step 60 "$PY" -m pytest -q -p no:cacheprovider -rs -k cuda tests
    step 300 "$PY" -m ganlib.bench "${DEV[@]}" --batch-size 128 "${WINDOWS[@]}" --out "$RESULTS"
    # then every test: those that pick the default device run on the GPU here, which CI never does
    [ "$QUICK" = 1 ] || step 180 "$PY" -m pytest -q -p no:cacheprovider --durations=5 tests
    ;;
2)
    step 200 "$PY" -m ganlib.bench "${DEV[@]}" --batch-size 512 "${WINDOWS[@]}" --out "$RESULTS"
    step 240 "$PY" -m ganlib.bench fid-parity "${DEV[@]}" "${FID[@]}" --out "$RESULTS"
    # the CLI's multi-GPU path (NCCL on CUDA), synced BatchNorm, then a resume in one plain process
    step 60 "$PY" -m torch.distributed.run --standalone "${TORCHRUN[@]}" -m ganlib train --dataset mnist \
        --model dcgan "${TRAIN[@]}" --steps "$TRAIN_STEPS" "${SYNC_BN[@]}" --out "$RUNS/ddp"
    step 60 "$PY" -m ganlib train --dataset mnist --model dcgan "${TRAIN[@]}" --steps $((TRAIN_STEPS + 100)) \
        --resume --out "$RUNS/ddp"
    # the CLI's single-GPU fast path: the whole step as one CUDA graph, compiled kernels inside it
    step 120 "$PY" -m ganlib train --dataset mnist --model dcgan "${TRAIN[@]}" --steps "$TRAIN_STEPS" \
        --cuda-graph --compile default --out "$RUNS/graph"
    ;;
3)
    # the same fast path with one ingredient at a time: torch.compile's own CUDA graphs; a hand-made
    # CUDA graph around eager kernels; compiled kernels without any CUDA graph
    step 150 "$PY" -m ganlib.bench "${DEV[@]}" --batch-size 128 --versions b,c "${WINDOWS[@]}" --cuda-graph off \
        --compile reduce-overhead --out "$RESULTS"
    step 150 "$PY" -m ganlib.bench "${DEV[@]}" --batch-size 128 --versions b,c "${WINDOWS[@]}" --cuda-graph on \
        --compile none --out "$RESULTS"
    step 150 "$PY" -m ganlib.bench "${DEV[@]}" --batch-size 128 --versions b,c "${WINDOWS[@]}" --cuda-graph off \
        --compile default --out "$RESULTS"
    ;;
*)
    echo "usage: bash bench/gpu_session.sh 1|2|3" >&2; exit 2 ;;
esac
echo "part $part done; log in $LOG, results in $OUT/RESULTS.md"
