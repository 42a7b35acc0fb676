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
(cd "$WORK/runner" && exec "$FLOWCTL" runner serve --port "$PORT" >"$WORK/runner/runner.log" 2>&1) &
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
         samples/events/proposal-needs-approval.json samples/events/duplicate-tickets.json \
         samples/events/new-webinar-lead.json; do
  echo "--- $f"
  "$FLOWCTL" events send "$f"
done
# Give the outbox worker a moment to deliver what the runs queued.
sleep 2

step "flowctl runs list"
"$FLOWCTL" runs list
step "flowctl tasks list"
"$FLOWCTL" tasks list
step "messages in the file outbox ($WORK/runner/.flowctl/outbox)"
ls -1 "$WORK/runner/.flowctl/outbox" | head -20
first=$(ls -1 "$WORK/runner/.flowctl/outbox"/*.eml 2>/dev/null | head -1 || true)
if [ -n "$first" ]; then
  echo "--- $(basename "$first")"
  sed -n '1,25p' "$first"
fi
step "done"
echo "Explore: cd $WORK/repo && FLOWCTL_RUNNER_URL=$FLOWCTL_RUNNER_URL FLOWCTL_TOKEN=\$(cat $WORK/runner/.flowctl/admin.token) $FLOWCTL runs list"
echo "(the runner stops now; start it again with: cd $WORK/runner && $FLOWCTL runner serve --port $PORT)"
