#!/usr/bin/env bash
# What a new user gets, replayed on this machine: a clean clone of the committed HEAD into a temporary
# folder, a fresh venv and fresh bdc folders (no models, no store, no config), the README's two commands
# as written there, `bdc models install`, then a headless one-problem search with the default agents
# (the local pair) that must record successful LLM calls within a bounded time. Prints a summary and
# exits non-zero when a step failed.
#
# Usage: scripts/fresh_check.sh [--skip-tests] [--keep] [--calls-within S] [--search-timeout S] [--tests-timeout S]
#   --skip-tests       run the README's test command's install but not `python -m pytest` (it is long on 2 cores)
#   --keep             keep the temporary folder (default: removed)
#   --calls-within S   the first successful LLM call must be recorded within S seconds of the search start (600)
#   --search-timeout S the search is stopped (SIGTERM, then recorded as cancelled) after S seconds (1800)
#   --tests-timeout S  bound on the test suite (5400)
# The temporary folder is made in $FRESH_CHECK_PARENT (default: $HOME).
set -uo pipefail

SKIP_TESTS=0 KEEP=0 CALLS_WITHIN=600 SEARCH_TIMEOUT=1800 TESTS_TIMEOUT=5400
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-tests) SKIP_TESTS=1 ;;
    --keep) KEEP=1 ;;
    --calls-within) CALLS_WITHIN="$2"; shift ;;
    --search-timeout) SEARCH_TIMEOUT="$2"; shift ;;
    --tests-timeout) TESTS_TIMEOUT="$2"; shift ;;
    *) echo "unknown option: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done

SRC=$(cd "$(dirname "$0")/.." && pwd)
REV=$(git -C "$SRC" rev-parse HEAD)
# not under /tmp: the sandbox mounts a private tmpfs over /tmp, which would hide a venv living there
WORK=$(mktemp -d -p "${FRESH_CHECK_PARENT:-$HOME}" bdc-fresh-XXXXXX)
LOG="$WORK/fresh_check.log"
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
SUMMARY=()
FAILED=0
T0=$(date +%s)

note() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
step() {  # step NAME TIMEOUT_S COMMAND...: run, log, time, record the outcome
  local name="$1" limit="$2"; shift 2
  local start rc
  start=$(date +%s)
  note "== $name"
  timeout --kill-after=30 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  local took=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    SUMMARY+=("ok    $name (${took}s)")
  else
    [ $rc -eq 124 ] && rc="timeout after ${limit}s"
    SUMMARY+=("FAIL  $name (${took}s, exit $rc)")
    FAILED=1
  fi
  note "   $name: exit $rc in ${took}s"
  [ "$rc" = 0 ]
}
finish() {
  echo
  echo "fresh check of $REV ($(git -C "$SRC" log -1 --format=%s "$REV" | cut -c1-70))"
  printf '  %s\n' "${SUMMARY[@]}"
  echo "  total $(( $(date +%s) - T0 ))s; log: $LOG$([ "$KEEP" = 1 ] || echo ' (removed; --keep keeps it)')"
  [ "$FAILED" = 0 ] && echo "RESULT ok" || echo "RESULT failed"
  if [ "$FAILED" != 0 ] && [ "$KEEP" != 1 ]; then
    echo "--- last lines of the log"; tail -n 25 "$LOG"
  fi
  exit "$FAILED"
}

note "work folder $WORK, revision $REV"
step "clean clone" 600 git clone --quiet --no-local "$SRC" "$WORK/bdc" || finish
git -C "$WORK/bdc" checkout --quiet "$REV" || finish
cd "$WORK/bdc" || finish
step "fresh venv" 600 "${PYTHON:-python3}" -m venv "$WORK/venv" || finish
export PATH="$WORK/venv/bin:$PATH" VIRTUAL_ENV="$WORK/venv"
# a new user's bdc folders: no models, no store, no config
export BDC_HOME="$WORK/home" BDC_CACHE="$WORK/cache" BDC_CONFIG="$WORK/config.toml" BDC_DB="$WORK/bdc.db"
export HF_HUB_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
unset PYTHONPATH

# the README's two commands, exactly as written in its "Two commands" section
mapfile -t CMDS < <(awk '/^## Two commands/{f=1; next} /^## /{f=0} f && /^pip install/' README.md)
if [ "${#CMDS[@]}" -ne 2 ]; then
  SUMMARY+=("FAIL  README: expected 2 commands in 'Two commands', found ${#CMDS[@]}"); FAILED=1; finish
fi
note "README command 1: ${CMDS[0]}"
note "README command 2: ${CMDS[1]}"
INSTALL1="${CMDS[0]%% && *}" RUN1="${CMDS[0]#* && }"
INSTALL2="${CMDS[1]%% && *}" RUN2="${CMDS[1]#* && }"
step "README 1: $INSTALL1" 3600 bash -c "$INSTALL1" || finish
# `bdc-tui` is interactive: check it starts as far as a terminal-free run can (its CLI and its app import)
step "README 1: $RUN1 (--help, app import)" 300 bash -c "$RUN1 --help >/dev/null && python -c 'import bdc_tui.app'"
step "README 2: $INSTALL2" 3600 bash -c "$INSTALL2" || finish
if [ "$SKIP_TESTS" = 1 ]; then
  SUMMARY+=("skip  README 2: $RUN2 (--skip-tests)")
else
  step "README 2: $RUN2" "$TESTS_TIMEOUT" bash -c "$RUN2"
  SUMMARY+=("      pytest: $(grep -E '[0-9]+ (passed|failed|error)' "$LOG" | tail -n 1 | tr -d '=' | xargs)")
fi

step "bdc models install" 3600 bdc models install || finish

# the main job, headless: one HumanEval problem with the default agents (the local pair)
note "== search (first successful LLM call within ${CALLS_WITHIN}s, stopped after ${SEARCH_TIMEOUT}s)"
SEARCH_START=$(date +%s)
bdc search --dataset humaneval --limit 1 --rollouts 2 --thoughts 2 --max-depth 2 --quiet >>"$LOG" 2>&1 &
SEARCH_PID=$!
calls() {  # "<run id> <status> <calls> <successful calls> <error>" of the newest run
  python - "$BDC_DB" <<'EOF'
import asyncio, sys
from engine.store import Store

async def main(db: str) -> None:
    try:
        store = await Store.open(db, readonly=True)
    except Exception:
        print("- none 0 0 -"); return
    try:
        runs = await store.runs()
        if not runs:
            print("- none 0 0 -"); return
        run = max(runs, key=lambda r: r.created_at)
        rows = await store.llm_calls(run.id)
        ok = sum(1 for r in rows if not r.get("error"))
        first_error = next((r["error"] for r in rows if r.get("error")), None) or run.error or "-"
        print(run.id, run.status, len(rows), ok, first_error.replace("\n", " ")[:200])
    finally:
        await store.close()

asyncio.run(main(sys.argv[1]))
EOF
}
FIRST_OK=""
while kill -0 "$SEARCH_PID" 2>/dev/null; do
  sleep 10
  now=$(( $(date +%s) - SEARCH_START ))
  read -r RUN_ID STATUS N OK ERR < <(calls)
  if [ -z "$FIRST_OK" ] && [ "${OK:-0}" -gt 0 ]; then
    FIRST_OK=$now
    note "   first successful LLM call recorded after ~${now}s (run $RUN_ID: $N calls, $OK ok)"
  fi
  if [ -z "$FIRST_OK" ] && [ "$now" -ge "$CALLS_WITHIN" ]; then
    note "   no successful LLM call after ${now}s: stopping the search"; break
  fi
  if [ "$now" -ge "$SEARCH_TIMEOUT" ]; then
    note "   search still running after ${now}s: stopping it"; break
  fi
done
if kill -0 "$SEARCH_PID" 2>/dev/null; then
  kill -TERM "$SEARCH_PID"; sleep 20; kill -KILL "$SEARCH_PID" 2>/dev/null
fi
wait "$SEARCH_PID"; SEARCH_RC=$?
TOOK=$(( $(date +%s) - SEARCH_START ))
read -r RUN_ID STATUS N OK ERR < <(calls)
note "   search: exit $SEARCH_RC after ${TOOK}s; run $RUN_ID $STATUS; $N LLM calls recorded, $OK successful; first error: $ERR"
if [ -n "$FIRST_OK" ]; then
  SUMMARY+=("ok    search: first successful LLM call after ~${FIRST_OK}s (bound ${CALLS_WITHIN}s)")
else
  SUMMARY+=("FAIL  search: no successful LLM call within ${CALLS_WITHIN}s (first error: $ERR)"); FAILED=1
fi
if [ "$STATUS" = finished ] && [ "$SEARCH_RC" = 0 ]; then
  SUMMARY+=("ok    search: run $RUN_ID finished in ${TOOK}s, $N LLM calls ($OK ok)")
  SUMMARY+=("      $(grep -E '^run .* (finished|failed|cancelled):' "$LOG" | tail -n 1)")
else
  SUMMARY+=("FAIL  search: run $RUN_ID ended '$STATUS' (exit $SEARCH_RC) after ${TOOK}s, $N LLM calls ($OK ok)"); FAILED=1
fi
finish
