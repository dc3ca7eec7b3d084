# Every training stage of the CLI end to end, on whatever device torch finds (a GPU if there is
# one): a base policy, SFT and auxiliary fine-tunes, `merge`, SFT with the orthogonal penalty,
# LoRA and LoRA-SP fine-tunes, a resumed run, `export`. Tiny model, LeRobot's own fixture dataset;
# prints one line per stage (exit code, seconds, its last logged metrics) and the device used.
#
#     PYTHONPATH=src bash benchmarks/cli_check.sh [STEPS=40] [OUTDIR=/tmp/leanvla_cli_check] [DATA]
#
# DATA defaults to ../shared/fixtures/lerobot_metaworld_v30 (on a machine without ../shared, a copy
# of it). PYTHON picks the interpreter (default python3).
S=${1:-40}
R=${2:-/tmp/leanvla_cli_check}
D=${3:-../shared/fixtures/lerobot_metaworld_v30}
PY=${PYTHON:-python3}
[ -d "$D/meta" ] || { echo "no LeRobot dataset at $D: pass one as the third argument" >&2; exit 2; }
[ -e "$R" ] && { echo "$R exists: pass a new output directory" >&2; exit 2; }
mkdir -p "$R"
T=(--batch-size 16 --log-every 10)
run() { # NAME RUN_DIR ARGS...: one stage, its line
    local name=$1 dir=$2 t0=$SECONDS
    shift 2
    "$PY" -m leanvla "$@" >"$R/$name.log" 2>&1
    local rc=$?
    printf '%-7s rc=%s %4ss  %s\n' "$name" $rc $((SECONDS - t0)) \
        "$(grep -h '"step"' "$dir/metrics.jsonl" 2>/dev/null | tail -1 | cut -c1-170)"
    [ $rc = 0 ] || tail -3 "$R/$name.log"
}
run base "$R/base" train --data "$D" --out "$R/base" --model.size tiny --threads 2 "${T[@]}" --steps "$S"
run sft "$R/sft" train --data "$D" --init "$R/base" --out "$R/sft" "${T[@]}" --steps "$S"
run aux "$R/aux" train --data "$D" --init "$R/base" --out "$R/aux" "${T[@]}" --steps "$S" --aux.horizon 8 --aux.env-state
run merge "$R/meta" merge --base "$R/base" --sft "$R/sft" --aux "$R/aux" --out "$R/meta"
run orth "$R/orth" train --data "$D" --init "$R/meta" --out "$R/orth" "${T[@]}" --steps "$S" \
    --orth.vector "$R/meta/capability_vector.safetensors"
run lora "$R/lora" train --data "$D" --init "$R/base" --out "$R/lora" "${T[@]}" --steps "$S" --adapter lora --lora.rank 8
SP=(--adapter lora-sp --lora.rank 8 --lora.eta 0.8)
run lorasp "$R/lorasp" train --data "$D" --init "$R/base" --out "$R/lorasp" "${T[@]}" --steps "$S" "${SP[@]}"
run resume "$R/lorasp" train --data "$D" --init "$R/base" --out "$R/lorasp" "${T[@]}" --steps $((S + 20)) "${SP[@]}"
run export "$R/folded" export --policy "$R/lorasp" --out "$R/folded"
grep -h '"cuda_device"' "$R/orth/environment.json" | head -1
