#!/usr/bin/env bash
# Bring up everything jobq needs on a Debian or Ubuntu machine, installing what is
# missing: Docker's engine (docker.io), RabbitMQ (rabbitmq-server), the jobq
# package in ./.venv, and the small local image the example and tests use.
# Safe to run again: it only does what is not done yet.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
say() { printf '==> %s\n' "$*"; }

# 1. Debian packages.
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Docker's engine. live-restore keeps containers running while dockerd restarts.
if ! $SUDO docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    say "starting docker (systemd)"
    $SUDO systemctl start docker
  else
    say "starting dockerd (log: /var/log/jobq-dockerd.log)"
    $SUDO sh -c 'nohup dockerd --live-restore >>/var/log/jobq-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 60); do $SUDO docker info >/dev/null 2>&1 && break; sleep 1; done
  $SUDO docker info >/dev/null 2>&1 || { echo "dockerd did not come up; see /var/log/jobq-dockerd.log" >&2; exit 1; }
fi

# 3. RabbitMQ.
if ! $SUDO rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    say "starting rabbitmq-server (systemd)"
    $SUDO systemctl start rabbitmq-server
  else
    say "starting rabbitmq-server"
    $SUDO rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  # await_startup gives up at once if the node has not registered with epmd yet,
  # which is the usual case straight after -detached, so ask again until it answers.
  for _ in $(seq 120); do $SUDO rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 1; done
  $SUDO timeout 120 rabbitmqctl await_startup >/dev/null \
    || { echo "rabbitmq-server did not come up; see /var/log/rabbitmq/" >&2; exit 1; }
fi

# 4. The package, in a virtualenv.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import jobq.supervisor.main, pytest, ruff' >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.jobq-installed ]; then
  say "installing jobq into .venv"
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e '.[test]'; } \
       >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    exit 1
  fi
  touch .venv/.jobq-installed
fi

# 5. The example image (no registry is needed: it is built from busybox-static).
scripts/build-image.sh
say "ready: Docker $($SUDO docker version -f '{{.Server.Version}}'), RabbitMQ up, jobq in .venv"
