#!/usr/bin/env bash
# The README's first quick-start command: set everything up, then walk through
# what flowctl does — validate, test, simulate, start an embedded runner on
# SQLite, publish the example flows, send sample CRM events, and show the runs,
# the human tasks and the messages written to the file outbox.
#
# Nothing here touches this clone: the publish happens in a throwaway git copy
# of the example repository under a temp folder (kept for you to explore), and
# the runner listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh

FLOWCTL="$ROOT/.venv/bin/flowctl"
PY="$ROOT/.venv/bin/python"
step() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }

step "flowctl validate                 # schema, references, templates, graph and cross-flow checks"
"$FLOWCTL" validate

step "flowctl test                     # every flow test in tests/flows/ on a virtual clock"
"$FLOWCTL" test

step "flowctl simulate welcome-new-customer --record tests/fixtures/new-contacts.yaml --for 10d"
"$FLOWCTL" simulate welcome-new-customer --record tests/fixtures/new-contacts.yaml --for 10d

step "flowctl graph proposal-approval  # mermaid, for the pull request"
"$FLOWCTL" graph proposal-approval

WORK=${FLOWCTL_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/flowctl-demo.XXXXXX")}
mkdir -p "$WORK/repo/tests" "$WORK/runner"
step "copying the example repository into a fresh git repo at $WORK/repo"
cp -r flowctl.yaml flows templates schemas samples "$WORK/repo/"
cp -r tests/flows tests/fixtures "$WORK/repo/tests/"
# The example ERP lives at erp.acme.example; the demo has none. Point the copy's erp-order-sync at a
# port on this machine where nothing listens, so the push fails fast (connection refused), and shorten
# its retry delays from minutes to seconds: after three attempts the flow hands the order to a person
# (PowerX scenario D-1) while you watch. The flow test that pins the retry timing moves along with it
# (`flowctl apply` runs every flow test). The runner gets a harmless ERP_TOKEN below.
ERP_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ERP_FLOW="$WORK/repo/flows/erp-order-sync.yaml"
ERP_TEST="$WORK/repo/tests/flows/erp-order-sync-retry.yaml"
sed -i -e "s#https://erp.acme.example/#http://127.0.0.1:$ERP_PORT/#" \
       -e 's#retry: {attempts: 3, delay: 1m, backoff: exponential, max_delay: 10m}#retry: {attempts: 3, delay: 1s, backoff: exponential, max_delay: 10s}#' \
       "$ERP_FLOW"
sed -i -e 's#at 0s, 1m and 3m (exponential backoff from 1m)#at 0s, 1s and 3s (exponential backoff from 1s)#' \
       -e 's#at: "2026-01-05T09:03:00Z"#at: "2026-01-05T09:00:03Z"#' "$ERP_TEST"
grep -q "http://127.0.0.1:$ERP_PORT/" "$ERP_FLOW" && grep -q "delay: 1s" "$ERP_FLOW" && grep -q "09:00:03Z" "$ERP_TEST" \
  || { echo "demo: could not point $ERP_FLOW at the loopback ERP" >&2; exit 1; }
(
  cd "$WORK/repo"
  git init -q -b main
  git config user.name "Demo Publisher"
  git config user.email "demo@example.com"
  git add -A
  git commit -qm "Example flows"
)

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export FLOWCTL_RUNNER_URL="http://127.0.0.1:$PORT"
step "flowctl runner serve --port $PORT   # embedded SQLite under $WORK/runner/.flowctl"
(cd "$WORK/runner" && ERP_TOKEN=demo-token-not-a-secret exec "$FLOWCTL" runner serve --port "$PORT" \
  >"$WORK/runner/runner.log" 2>&1) &
RUNNER_PID=$!
trap 'kill "$RUNNER_PID" 2>/dev/null || true; wait "$RUNNER_PID" 2>/dev/null || true' EXIT
"$PY" - "$FLOWCTL_RUNNER_URL" <<'PYEOF'
import sys, time, urllib.request
url = sys.argv[1] + "/v1/health"
for _ in range(200):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("the runner did not start; see runner.log")
PYEOF
export FLOWCTL_TOKEN
FLOWCTL_TOKEN=$(cat "$WORK/runner/.flowctl/admin.token")
echo "runner up; admin token in $WORK/runner/.flowctl/admin.token"

cd "$WORK/repo"
step "flowctl plan                     # what apply would change on the runner"
"$FLOWCTL" plan
step "flowctl apply --yes              # publish and tag flows/v1"
"$FLOWCTL" apply --yes
step "flowctl history"
"$FLOWCTL" history

step "flowctl events send samples/events/*.json"
for f in samples/events/00-seed-users.json samples/events/01-seed-accounts-and-contacts.json \
         samples/events/new-premium-contact.json samples/events/high-priority-api-case.json \
         samples/events/case-first-response.json samples/events/proposal-needs-approval.json \
         samples/events/duplicate-tickets.json samples/events/new-webinar-lead.json \
         samples/events/deal-won.json; do
  echo "--- $f"
  "$FLOWCTL" events send "$f"
done
# Give the outbox worker a moment to deliver what the runs queued, and the ERP push its three
# attempts (1s, then 2s apart) until the compensation task is there.
"$PY" - "$FLOWCTL" <<'PYEOF'
import json, subprocess, sys, time
for _ in range(60):
    out = subprocess.run([sys.argv[1], "tasks", "list", "--kind", "compensation", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    if json.loads(out)["tasks"]:
        sys.exit(0)
    time.sleep(0.5)
sys.exit("the ERP push did not reach its compensation task; see runner.log")
PYEOF

step "flowctl runs list"
"$FLOWCTL" runs list
step "flowctl tasks list"
"$FLOWCTL" tasks list
ERP_TASK=$("$FLOWCTL" tasks list --kind compensation --format json \
  | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["tasks"][0]["id"])')
step "flowctl tasks complete $ERP_TASK --decision done   # the ERP order entered by hand (PowerX D-1)"
"$FLOWCTL" tasks complete "$ERP_TASK" --decision done --by maria.garcia -m "Entered SO-88121 in the ERP by hand"
ERP_RUN=$("$FLOWCTL" runs list --flow erp-order-sync --format json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["runs"][0]["id"])')
step "flowctl runs show $ERP_RUN           # three failed attempts, the manual step, succeeded_compensated"
"$FLOWCTL" runs show "$ERP_RUN"
step "messages in the file outbox ($WORK/runner/.flowctl/outbox)"
ls -1 "$WORK/runner/.flowctl/outbox" | head -20
first=$(ls -1 "$WORK/runner/.flowctl/outbox"/*.eml 2>/dev/null | head -1 || true)
if [ -n "$first" ]; then
  echo "--- $(basename "$first")"
  sed -n '1,25p' "$first"
fi
step "done"
echo "Explore: cd $WORK/repo && FLOWCTL_RUNNER_URL=$FLOWCTL_RUNNER_URL FLOWCTL_TOKEN=\$(cat $WORK/runner/.flowctl/admin.token) $FLOWCTL runs list"
echo "(the runner stops now; start it again with: cd $WORK/runner && ERP_TOKEN=demo-token-not-a-secret $FLOWCTL runner serve --port $PORT)"
