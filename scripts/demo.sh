#!/usr/bin/env bash
# demo.sh: the README's main job for a user without a VM of their own: starts
# a local Debian 12 lab host and shows it reachable over SSH.
# Run as root on Debian 12: scripts/demo.sh   (stop it with: bin/deploylab lab stop)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/install-deps.sh --lab
go build -o bin/deploylab ./cmd/deploylab
bin/deploylab lab start --hosts "${HOSTS:-1}"
bin/deploylab lab status
bin/deploylab lab ssh 1 -- systemctl is-system-running
echo
echo "inventory for every other command: -i $(bin/deploylab lab inventory)"
echo "log in:   bin/deploylab lab ssh 1"
echo "clean up: bin/deploylab lab stop"
