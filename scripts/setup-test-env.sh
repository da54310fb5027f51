#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine: the venv with the server and test
# extras, Debian's Chromium (browser tests), ClickHouse server (store tests on ClickHouse) and ZooKeeper
# (the cluster tests, tests/cluster/: they start ZooKeeper and two ClickHouse servers themselves, each in
# a temporary folder on free ports, from the configuration files in tests/cluster/guide/).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[server,clickhouse,test]'
# examples/llamaindex_openinference.py: llama-index-llms-openai pins openai<3, which would pull the
# whole suite back to openai 2.x; its code runs fine on 3.x, so it goes in without its pins.
.venv/bin/python -m pip install -q --no-deps 'llama-index-llms-openai>=0.3'

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server clickhouse-client)
# `zookeeper` only: its jar and Java, no service (`zookeeperd` would start one on port 2181 at boot).
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" fonts-dejavu-core >/dev/null
fi
