#!/usr/bin/env bash
# The main job, end to end: bring up what is missing, start a supervisor from
# etc/worker.toml, send etc/examples/hello.json, and show its output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

mkdir -p var
log=var/worker-1.log
echo "==> starting jobq-supervisor -c etc/worker.toml (log: $log)"
.venv/bin/jobq-supervisor -c etc/worker.toml >"$log" 2>&1 &
supervisor=$!
trap 'kill -TERM $supervisor 2>/dev/null; wait $supervisor 2>/dev/null || true' EXIT
for _ in $(seq 60); do
  grep -q "connected to" "$log" && break
  kill -0 $supervisor 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.5
done
if ! grep -q "connected to" "$log"; then
  echo "jobq-supervisor did not reach RabbitMQ in 30 s; its log ($log) ends:" >&2
  tail -n 5 "$log" >&2
  exit 1
fi

echo "==> jobq-send --wait etc/examples/hello.json"
set +e
.venv/bin/jobq-send --wait --timeout 120 etc/examples/hello.json
status=$?
set -e
case $status in
  2|3) echo "==> jobq-send exited $status: the job was not sent (see its message above)" ;;
  124) echo "==> jobq-send exited 124: the job did not end within 120 s" ;;
  *) echo "==> jobq-send exited $status (the job's exit code)" ;;
esac
echo "==> job logs are in var/worker-1/logs/; the supervisor's log is $log"
exit $status
