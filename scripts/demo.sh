#!/usr/bin/env bash
# demo.sh: the README's main job for a user without a VM of their own: builds
# deploylab and runs `deploylab demo`: a local Debian 12 lab host (Node.js,
# npm, pm2, loadtest), deploylab's Go servers and the practice's Node app
# under PM2 deployed on it, the 4-way comparison (short plan), the grade
# spreadsheet notas.xlsx; the lab host is stopped at the end.
# Run as root on Debian 12: scripts/demo.sh [demo flags: --keep, --full, ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/install-deps.sh --lab
go build -o bin/deploylab ./cmd/deploylab
exec bin/deploylab demo "$@"
