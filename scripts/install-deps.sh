#!/usr/bin/env bash
# install-deps.sh: installs what deploylab's demo and tests need on a Debian 12
# machine, and only what is missing. Run as root. Idempotent.
#   scripts/install-deps.sh          everything the tests need
#   scripts/install-deps.sh --lab    only what the lab hosts need (the demo)
set -euo pipefail

want_all=1
[ "${1:-}" = "--lab" ] && want_all=0

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 5; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0): lab hosts need namespaces, mounts and apt"
[ -r /etc/debian_version ] || die "this script installs Debian packages; on another system install the packages listed in README.md by hand"

# command -> Debian package that provides it
declare -A pkgs=(
	[systemd-nspawn]=systemd-container
	[debootstrap]=debootstrap
	[ip]=iproute2
	[ssh-keygen]=openssh-client
	[ssh-agent]=openssh-client
	[curl]=curl
	[git]=git
	[make]=make
)
if [ "$want_all" = 1 ]; then
	pkgs+=(
		[sshd]=openssh-server
		[node]=nodejs
		[npm]=npm
		[wrk]=wrk
		[soffice]=libreoffice-calc-nogui
		[wget]=wget
		[sudo]=sudo
		[pgrep]=procps
		[ss]=iproute2
		[unzip]=unzip
		[chromium]=chromium
		# grade --submissions: PDF text and pictures, OCR of screenshots
		# (Spanish and English), and LibreOffice Writer for the tests'
		# DOCX/ODT -> PDF conversions.
		[pdftotext]=poppler-utils
		[pdfimages]=poppler-utils
		[tesseract]=tesseract-ocr
		[/usr/share/tesseract-ocr/5/tessdata/spa.traineddata]=tesseract-ocr-spa
		[/usr/share/tesseract-ocr/5/tessdata/eng.traineddata]=tesseract-ocr-eng
		[/usr/lib/libreoffice/program/libswlo.so]=libreoffice-writer-nogui
	)
fi

missing=()
for cmd in "${!pkgs[@]}"; do
	p=${pkgs[$cmd]}
	if [ "$cmd" = sshd ]; then
		[ -x /usr/sbin/sshd ] && continue
	elif [ "${cmd#/}" != "$cmd" ]; then
		[ -e "$cmd" ] && continue
	elif command -v "$cmd" >/dev/null 2>&1; then
		continue
	fi
	case " ${missing[*]-} " in *" $p "*) ;; *) missing+=("$p") ;; esac
done
if [ "${#missing[@]}" -gt 0 ]; then
	say "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Package scripts must not start daemons (sshd) on this machine: tests run
	# their own sshd on a loopback port.
	policy=/usr/sbin/policy-rc.d
	made_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
	fi
	trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
	apt-get update -qq || die "apt-get update failed: check this machine's package sources"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi

# PM2 on this machine: the grading probe is tested against a real PM2 cluster.
if [ "$want_all" = 1 ] && ! command -v pm2 >/dev/null 2>&1; then
	say "npm install -g pm2@7"
	npm install -g --no-audit --no-fund pm2@7 >/dev/null || die "npm install -g pm2@7 failed: check this machine's npm registry settings"
fi

# Go 1.26 or newer: the module proxy can supply the toolchain to any Go >= 1.21.
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
	die "Go is not installed: install Go 1.26 (https://go.dev/doc/install) into /usr/local/go, then run again"
fi
gov=$(go env GOVERSION | sed 's/^go//')
case "$gov" in
	1.2[6-9]* | 1.[3-9][0-9]* | [2-9].*) ;;
	*) [ "$(go env GOTOOLCHAIN)" != local ] || die "Go $gov is too old and GOTOOLCHAIN=local: install Go 1.26" ;;
esac

# Many lab hosts each run systemd, which needs inotify instances (at 128 the
# ~28th host hangs).
cur=$(cat /proc/sys/fs/inotify/max_user_instances)
if [ "$cur" -lt 8192 ]; then
	sysctl -q -w fs.inotify.max_user_instances=8192 || say "could not raise fs.inotify.max_user_instances (now $cur)"
fi

say "ok"
