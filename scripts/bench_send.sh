#!/usr/bin/env bash
# How fast jobq-send publishes many jobs: 10,000 small jobs from one JSON-lines
# file, each confirmed by RabbitMQ, into a scratch vhost (deleted afterwards).
#   scripts/bench_send.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10000}"
vhost="jobq-bench-$$"
file=$(mktemp --suffix=.jsonl)
trap 'rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true; rm -f "$file"' EXIT
rabbitmqctl -q add_vhost "$vhost" >/dev/null
rabbitmqctl -q set_permissions -p "$vhost" guest ".*" ".*" ".*" >/dev/null
for i in $(seq "$count"); do
  echo "{\"image\": \"jobq/busybox:latest\", \"cmd\": [\"echo\", \"$i\"], \"resources\": {\"cpu\": 0.1, \"memory\": \"8m\"}}"
done > "$file"
start=$(date +%s%N)
.venv/bin/jobq-send --broker "amqp://guest:guest@localhost:5672/$vhost" "$file" >/dev/null
end=$(date +%s%N)
echo "jobq-send of $count jobs, whole command: $(( (end - start) / 1000000 )) ms"
# RabbitMQ refreshes queue statistics every few seconds, so a count read at once
# lags what was confirmed; ask until it has caught up (or 30 s have passed).
for _ in $(seq 30); do
  queued=$(rabbitmqctl -q list_queues -p "$vhost" name messages | awk '$1 == "jobq.jobs" {print $2}')
  [ "$queued" = "$count" ] && break
  sleep 1
done
echo "jobq.jobs holds $queued messages (sent $count)"
[ "$queued" = "$count" ]
