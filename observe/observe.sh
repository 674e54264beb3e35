# deploylab observe: what one host shows, gathered in one round trip and
# printed as marked sections for observe.Parse. POSIX sh; read-only except
# for a temp dir it removes; works without root (sees less), without node,
# pm2, ss, curl or systemd (says so). Traffic goes to loopback only.
#
# Tools are run from system directories only (PATH is fixed below; the
# caller's PATH and the students' homes are never searched for a program to
# run). Programs found there (nvm's node, a project's loadtest) are
# reported, with their version read from their package.json or their path,
# but not run, with one exception: a PM2 daemon's own pm2 (next to the node
# that runs it) is run for `pm2 jlist` only as the daemon's user, never as
# root. See observe's package documentation.
#
# Inputs (shell variables, set by observe.Script before this text):
#   DL_PARTS        parts to gather ("all", or a list of: facts listeners
#                   tools projtools processes pm2 units files history http
#                   commands)
#   DL_DIRS         directories whose free space to measure besides /
#   DL_PATHS        request paths to GET on every app port ("/ /api/50")
#   DL_PORTS        extra ports to probe; DL_ONLY_PORTS=1 probes only those
#   DL_BLOCK_HEAVY  heavy path for the blocking experiment (empty: none)
#   DL_BLOCK_SHORT  short path sent while the heavy one runs ("/")
#   DL_BLOCK_PORTS  ports for the experiment (default: every probed port)
#   DL_FILES        extra absolute file globs to read
#   DL_UNITS        systemd unit patterns ("pm2-*.service deploylab-*.service")
#   DL_CMDS, DL_CMD_<i>_NAME, DL_CMD_<i>   commands to run and report
#   DL_SEARCH       directories to look for project files in
#   DL_MAXFILES, DL_MAXBYTES, DL_HTTP_TIMEOUT
#   DL_DISABLE      commands to pretend are missing (tests of the fallbacks)

LC_ALL=C
export LC_ALL
OPATH=$PATH
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
unset ENV BASH_ENV CDPATH LD_PRELOAD LD_LIBRARY_PATH NODE_OPTIONS NODE_PATH
umask 077

DL_PARTS=${DL_PARTS:-all}
DL_PATHS=${DL_PATHS-"/ /api/50"}
DL_BLOCK_SHORT=${DL_BLOCK_SHORT:-/}
DL_UNITS=${DL_UNITS:-"pm2-*.service deploylab-*.service"}
DL_MAXFILES=${DL_MAXFILES:-80}
DL_MAXBYTES=${DL_MAXBYTES:-16384}
DL_HTTP_TIMEOUT=${DL_HTTP_TIMEOUT:-5}
DL_CMDS=${DL_CMDS:-0}

M="@@DL-$(od -An -N6 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n')$$"
TAB=$(printf '\t')
NL='
'
T=$(mktemp -d 2>/dev/null) || { T=/tmp/dlprobe.$$; mkdir -p "$T"; }
trap 'rm -rf "$T"' EXIT
trap 'rm -rf "$T"; exit 130' INT TERM HUP

# sec NAME [key=value...]: starts a section.
sec() {
	printf '%s %s' "$M" "$1"
	shift
	for a in "$@"; do
		case $a in *"$TAB"* | *"$NL"*) a=$(printf '%s' "$a" | tr '\t\n' '  ') ;; esac
		printf '\t%s' "$a"
	done
	printf '\n'
}
note() { sec note; printf '%s\n' "$*"; }
# want PART: the caller asked for PART.
want() {
	case " $DL_PARTS " in *" all "* | *" $1 "*) return 0 ;; esac
	return 1
}
# have NAME: the command exists in a system directory (DL_DISABLE lists
# commands to pretend missing, for tests).
have() {
	case " $DL_DISABLE " in *" $1 "*) return 1 ;; esac
	command -v "$1" >/dev/null 2>&1
}
path_of() { have "$1" && command -v "$1"; }
# trusted FILE: FILE (symlinks resolved) is in a directory only root writes
# to: it may be run as root.
trusted() {
	_r=$(readlink -f "$1" 2>/dev/null) || return 1
	case $_r in
	/usr/bin/* | /usr/sbin/* | /bin/* | /sbin/* | /usr/local/bin/* | /usr/local/sbin/* | \
		/usr/lib/node_modules/* | /usr/local/lib/node_modules/* | /usr/share/nodejs/* | \
		/usr/lib/nodejs/* | /usr/local/lib/nodejs/* | /opt/deploylab/*) return 0 ;;
	esac
	return 1
}
tmo() {
	if have timeout; then timeout "$@"; else shift; "$@"; fi
}
now_ms() {
	_d=$(date +%s%N 2>/dev/null)
	case $_d in *N | '' | *[!0-9]*) echo "" ;; *) echo $((_d / 1000000)) ;; esac
}

printf '#deploylab-probe 1 %s\n' "$M"

# --- who, where ---------------------------------------------------------
MYUID=$(id -u 2>/dev/null)
SUDO=
if [ "$MYUID" = 0 ]; then sudo=root
elif ! have sudo; then sudo=absent
elif sudo -n true >/dev/null 2>&1; then sudo=nopasswd; SUDO="sudo -n"
else sudo=password; fi
HOMES=""
addhome() { [ -d "$1" ] && [ -r "$1" ] || return 0; case " $HOMES " in *" $1 "*) ;; *) HOMES="$HOMES $1" ;; esac; }
addhome "$HOME"
addhome /root
for h in /home/*; do addhome "$h"; done
# Directories where programs are looked for but never run from (as root).
UPATH=
for h in $HOMES; do
	for b in "$h"/.nvm/versions/node/*/bin "$h"/.npm-global/bin "$h"/.local/bin "$h"/bin; do
		[ -d "$b" ] && UPATH="$UPATH:$b"
	done
done
SPATH=$PATH
for b in /usr/local/lib/nodejs/bin /usr/local/lib/deploylab /opt/deploylab/bin; do
	[ -d "$b" ] && SPATH="$SPATH:$b"
done
# find_tool NAME: the first NAME in the system directories, then in the
# caller's PATH, then in the homes (to report it; run only if trusted).
find_tool() {
	case " $DL_DISABLE " in *" $1 "*) return 1 ;; esac
	_IFS=$IFS
	IFS=:
	for _d in $SPATH $OPATH $UPATH; do
		case $_d in /*) ;; *) continue ;; esac
		[ -f "$_d/$1" ] && [ -x "$_d/$1" ] && { IFS=$_IFS; printf '%s\n' "$_d/$1"; return 0; }
	done
	IFS=$_IFS
	return 1
}

sec meta
echo "hostname=$(uname -n 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null)"
echo "user=$(id -un 2>/dev/null)"
echo "uid=$MYUID"
echo "home=$HOME"
echo "sudo=$sudo"
echo "machine=$(uname -m 2>/dev/null)"
echo "kernel=$(uname -r 2>/dev/null)"
cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c '^processor' /proc/cpuinfo 2>/dev/null)
echo "cpus=$cpus"
echo "mem=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo 2>/dev/null)"
echo "init=$(head -c 64 /proc/1/comm 2>/dev/null)"
[ -d /run/systemd/system ] && echo "systemd_booted=1"
# What tells a cloned VM: its machine-id and its SSH host keys (public).
[ -r /etc/machine-id ] && echo "machine_id=$(head -c 64 /etc/machine-id)"
echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
if [ -r /etc/os-release ]; then
	sec osrelease
	head -c 8192 /etc/os-release
	echo
fi
if want facts; then
	sec hostkeys
	for k in /etc/ssh/ssh_host_*_key.pub; do
		[ -r "$k" ] && head -c 4096 "$k" | head -n 1
	done
	sec df
	for d in / $DL_DIRS; do
		e=$d; while [ ! -e "$e" ] && [ "$e" != / ] && [ "$e" != . ]; do e=$(dirname "$e"); done
		printf '%s\t' "$d"; df -Pk -- "$e" 2>/dev/null | tail -n 1
	done
fi

# --- processes ------------------------------------------------------------
if want processes || want pm2; then
	have ps && ps -ww -eo pid=,ppid=,user:32=,args= 2>/dev/null | head -n 100000 >"$T/ps"
	if [ -s "$T/ps" ]; then
		fmt=ps
	elif have ps && ps -o pid,ppid,user,args 2>/dev/null | head -n 100000 >"$T/ps" && [ -s "$T/ps" ]; then
		fmt=ps-header
	else
		fmt=proc
		for d in /proc/[0-9]*; do
			[ -r "$d/status" ] || continue
			pp=$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)
			uu=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "$d/status" 2>/dev/null)
			cm=$( (head -c 4096 "$d/cmdline" | tr '\0' ' ') 2>/dev/null)
			[ -n "$cm" ] || cm="[$(head -c 64 "$d/comm" 2>/dev/null)]"
			echo "${d#/proc/} $pp $uu $cm"
		done | head -n 100000 >"$T/ps"
	fi
	if want processes; then
		sec processes format=$fmt
		cat "$T/ps"
	fi
fi

# --- listening sockets ----------------------------------------------------
if want listeners; then
	if have ss && $SUDO "$(command -v ss)" -ltnp 2>/dev/null | head -n 200000 >"$T/ss" && [ -s "$T/ss" ]; then
		sec listeners format=ss
		cat "$T/ss"
		# port host owner-is-app
		awk '$1=="LISTEN" {
			addr=$4; port=addr; sub(/.*:/,"",port); host=addr; sub(/:[^:]*$/,"",host); sub(/%.*/,"",host)
			users=""; for(i=6;i<=NF;i++) users=users" "$i
			app = (users=="" || users ~ /"(node|nodejs|bun|deno|npm|PM2|sum)/) ? 1 : 0
			if (users=="" && port+0 < 1024) app=0
			print port, host, app
		}' "$T/ss" >"$T/ports"
		# the programs and command lines of the sockets' processes (a
		# hand-run sumcluster has statistics too)
		for p in $(grep -o 'pid=[0-9]*' "$T/ss" | cut -d= -f2 | sort -un | head -n 200); do
			[ -n "$p" ] || continue
			printf '%s\t%s\t' "$p" "$($SUDO readlink "/proc/$p/exe" 2>/dev/null)"
			$SUDO head -c 4096 "/proc/$p/cmdline" 2>/dev/null | tr '\0\n\t' '   '
			echo
		done >"$T/exe"
		if [ -s "$T/exe" ]; then
			sec exe
			cat "$T/exe"
		fi
	else
		sec listeners format=proc
		for f in /proc/net/tcp /proc/net/tcp6; do
			[ -r "$f" ] && awk -v f="$f" '$4=="0A" {print f, $2, $10}' "$f"
		done | head -n 200000 | tee "$T/proc" 2>/dev/null
		awk 'function hex(s,  i,v){v=0; s=toupper(s); for(i=1;i<=length(s);i++) v=v*16+index("0123456789ABCDEF",substr(s,i,1))-1; return v}
		{ split($2,a,":"); port=hex(a[2]); ip=a[1]
		  if (length(ip)==8) host = (ip=="00000000" || substr(ip,7,2)=="7F") ? "127.0.0.1" : "other"
		  else host = (ip ~ /^0+$/ || ip ~ /FFFF0000..0000007F$/ || ip ~ /FFFF00000100007F$/) ? "[::]" : (ip=="00000000000000000000000001000000" ? "[::1]" : "other")
		  if (port >= 1024) print port, host, 1 }' "$T/proc" >"$T/ports"
		if find /proc/self/fd -maxdepth 0 -printf '' >/dev/null 2>&1; then
			sec sockets
			find /proc/[0-9]*/fd -lname 'socket:*' -printf '%h %l\n' 2>/dev/null | head -n 500000
		fi
	fi
fi

# --- tools -------------------------------------------------------------------
# pkgver FILE: version from the package.json above an npm-installed script
# (read, not run).
pkgver() {
	_p=$(readlink -f "$1" 2>/dev/null) || return 0
	_d=$(dirname "$_p")
	for _i in 1 2 3 4; do
		if [ -r "$_d/package.json" ]; then
			sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$_d/package.json" | head -n 1 | head -c 64
			return 0
		fi
		_d=$(dirname "$_d")
	done
}
if want tools; then
	sec tools
	for t in node nodejs npm pm2 loadtest loadgen autocannon ab wrk hey siege curl wget bash sumserver sumcluster; do
		p=$(find_tool "$t") || continue
		v=
		case $t in
		node | nodejs)
			if trusted "$p"; then
				v=$(tmo 10 "$p" -v </dev/null 2>/dev/null | head -n 1 | head -c 64)
			else
				# nvm's layout: .../versions/node/vX.Y.Z/bin/node
				v=$(readlink -f "$p" 2>/dev/null | sed -n 's|.*/node/\(v[0-9][0-9.]*\)/bin/[^/]*$|\1|p')
			fi
			;;
		npm | pm2 | loadtest | autocannon) v=$(pkgver "$p") ;;
		ab) trusted "$p" && v=$(tmo 5 "$p" -V </dev/null 2>/dev/null | sed -n 's/.*Version \([^ ]*\).*/\1/p' | head -n 1) ;;
		wrk) trusted "$p" && v=$(tmo 5 "$p" -v </dev/null 2>&1 | sed -n 's/^wrk \([^ ]*\).*/\1/p' | head -n 1) ;;
		curl) trusted "$p" && v=$(tmo 5 "$p" -V </dev/null 2>/dev/null | sed -n 's/^curl \([^ ]*\).*/\1/p' | head -n 1) ;;
		esac
		printf '%s\t%s\t%s\n' "$t" "$v" "$p"
	done
	# project-local installs (npm install loadtest in the project)
	if want projtools; then
		for h in $HOMES; do
			find "$h" -maxdepth 5 \( -name .git -o -name .cache -o -name .npm \) -prune -o -path '*/node_modules/.bin/*' \( -name loadtest -o -name autocannon -o -name pm2 \) -print 2>/dev/null | head -n 10
		done | while IFS= read -r p; do
			printf '%s\t%s\t%s\n' "${p##*/}" "$(pkgver "$p")" "$p"
		done
	fi
fi

# --- PM2 -----------------------------------------------------------------
if want pm2; then
	# pm2 to run as root: from a system directory only.
	PM2BIN=
	for p in /usr/local/bin/pm2 /usr/bin/pm2 /usr/local/lib/node_modules/pm2/bin/pm2 /usr/lib/node_modules/pm2/bin/pm2; do
		case " $DL_DISABLE " in *" pm2 "*) break ;; esac
		[ -x "$p" ] && PM2BIN=$p && break
	done
	# PM2 daemons: the process title starts with "PM2 vX.Y.Z: God Daemon" (a
	# command line merely containing those words, such as a shell's, is not one).
	awk '$4 == "PM2" && $5 ~ /^v[0-9.]+:$/ && $6 == "God" && $7 == "Daemon"' "$T/ps" 2>/dev/null | head -n 20 >"$T/pm2d"
	while read -r pid ppid user rest; do
		home=$(printf '%s\n' "$rest" | sed -n 's/.*God Daemon (\(.*\)).*/\1/p')
		if [ -z "$home" ] && [ -r "/proc/$pid/environ" ]; then
			# the title is cut to the length of the original command line
			home=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | sed -n 's/^PM2_HOME=//p' | head -n 1)
			[ -n "$home" ] || home=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | sed -n 's/^HOME=\(.*\)/\1\/.pm2/p' | head -n 1)
		fi
		sec pm2 "home=$home" "user=$user" "pid=$pid"
		[ -n "$home" ] && echo "$home" >>"$T/pm2homes"
		# Never run pm2 where no daemon runs: it would start one.
		if [ -z "$home" ]; then
			echo "error: cannot tell the daemon's PM2_HOME from its command line"
			continue
		fi
		if [ -r "$home/pm2.pid" ] && [ "$(head -c 32 "$home/pm2.pid" 2>/dev/null)" != "$pid" ]; then
			echo "error: $home/pm2.pid does not name the running daemon $pid"
			continue
		fi
		uid=$(id -u "$user" 2>/dev/null)
		nodebin=$(readlink -f "/proc/$pid/exe" 2>/dev/null)
		nodedir=$(dirname "$nodebin" 2>/dev/null)
		bin=$PM2BIN
		P=$PATH
		if [ -n "$nodedir" ] && trusted "$nodebin"; then
			P="$nodedir:$PATH"
		elif [ -n "$nodedir" ] && [ "$uid" != 0 ]; then
			# The daemon's own node and pm2 (nvm): run as the daemon's user only.
			P="$nodedir:$PATH"
			[ -n "$bin" ] || { [ -x "$nodedir/pm2" ] && case " $DL_DISABLE " in *" pm2 "*) false ;; esac && bin="$nodedir/pm2"; }
		fi
		if [ -z "$bin" ]; then
			echo "error: pm2 command not found"
			continue
		fi
		if [ "$uid" = "$MYUID" ] && { [ "$uid" != 0 ] || trusted "$bin"; }; then
			tmo 30 env PM2_HOME="$home" PATH="$P" "$bin" jlist 2>"$T/pm2err" | head -c 4194304
		elif [ "$MYUID" = 0 ] && [ "$uid" != 0 ] && have runuser; then
			tmo 30 runuser -u "$user" -- env PM2_HOME="$home" PATH="$P" HOME="${home%/.pm2}" "$bin" jlist 2>"$T/pm2err" | head -c 4194304
		elif [ "$MYUID" = 0 ] && [ "$uid" != 0 ] && have su; then
			tmo 30 su -s /bin/sh "$user" -c 'PM2_HOME="$1" PATH="$2" "$3" jlist' sh "$home" "$P" "$bin" 2>"$T/pm2err" | head -c 4194304
		elif [ "$uid" = 0 ]; then
			echo "error: pm2 is not installed in a system directory: not run as root"
			continue
		else
			echo "error: the daemon belongs to $user; the probe runs as $(id -un) (use sudo)"
			continue
		fi </dev/null || echo "error: pm2 jlist failed: $(head -c 300 "$T/pm2err" | tr '\n' ' ')"
		echo
	done <"$T/pm2d"
	{
		for h in $HOMES; do echo "$h/.pm2/dump.pm2"; done
		sed -n 's/.*PM2 v[0-9.]*.*: God Daemon (\(.*\)).*/\1\/dump.pm2/p' "$T/pm2d" 2>/dev/null
		[ -f "$T/pm2homes" ] && sed 's/$/\/dump.pm2/' "$T/pm2homes"
	} | awk '!seen[$0]++' | head -n 50 | while IFS= read -r f; do
		[ -r "$f" ] || continue
		sec pm2dump "path=$f"
		head -c 1048576 "$f"
		echo
	done
fi

# --- systemd ----------------------------------------------------------------
if want units; then
	if have systemctl && [ -d /run/systemd/system ]; then
		set -f
		units=$({
			systemctl list-unit-files --type=service --no-legend --no-pager $DL_UNITS 2>/dev/null
			systemctl list-units --all --type=service --no-legend --no-pager --plain $DL_UNITS 2>/dev/null
		} | awk '{for(i=1;i<=NF;i++) if ($i ~ /\.(service|socket|timer|target)$/) {print $i; break}}' | sort -u | head -n 500)
		for u in $DL_UNITS; do
			case $u in *'*'* | *'?'* | *'['*) ;; *) units="$units $u" ;; esac
		done
		sec units
		if [ -n "$units" ]; then
			# shellcheck disable=SC2086
			systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState,ExecStart,User,MainPID,NRestarts,ActiveEnterTimestampMonotonic,ControlGroup,RuntimeDirectory $units 2>&1 | head -c 4194304 >"$T/units"
			cat "$T/units"
			# the units' cgroup CPU counters (cgroup v2, or the unified
			# hierarchy of a hybrid setup)
			sed -n 's/^ControlGroup=\(\/..*\)/\1/p' "$T/units" | while IFS= read -r cg; do
				for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
					if [ -r "$d$cg/cpu.stat" ]; then printf 'CPUStat=%s\n' "$d$cg/cpu.stat" >>"$T/cpustat"; break; fi
				done
			done
			if [ -s "$T/cpustat" ]; then
				sec cgroups
				cat "$T/cpustat"
			fi
		fi
		set +f
	else
		note "systemd: not running on this host (no /run/systemd/system)"
	fi
fi

# --- project files ------------------------------------------------------------
if want files; then
	SEARCH=${DL_SEARCH:-"$HOMES /srv /opt /var/www"}
	dirs=""
	for d in $SEARCH; do [ -d "$d" ] && [ -r "$d" ] && dirs="$dirs $d"; done
	if [ -n "$dirs" ]; then
		# shellcheck disable=SC2086
		find $dirs -maxdepth 4 \( -name node_modules -o -name '.?*' -o -name proc -o -name sys \) -prune -o -type f \
			\( -name '*.js' -o -name '*.cjs' -o -name '*.mjs' -o -name '*.ts' -o -name 'package.json' -o -name '*.txt' \
			-o -name '*.md' -o -name '*.log' -o -name '*.json' -o -name '*.yaml' -o -name '*.yml' -o -name '*.config.*' \) \
			! -name package-lock.json -size -2048k -print 2>/dev/null | head -n 20000 >"$T/files"
		{
			grep -E '\.(c|m)?js$|/package\.json$|ecosystem' "$T/files"
			grep -vE '\.(c|m)?js$|/package\.json$|ecosystem' "$T/files"
		} | awk '!seen[$0]++' | head -n "$DL_MAXFILES" >"$T/files2"
	fi
	if [ -n "$DL_FILES" ]; then
		for f in $DL_FILES; do [ -f "$f" ] && printf '%s\n' "$f"; done | head -n 200 >>"$T/files2"
	fi
	[ -f "$T/files2" ] && awk '!seen[$0]++' "$T/files2" | while IFS= read -r f; do
		[ -r "$f" ] || { note "file: cannot read $f"; continue; }
		size=$(wc -c 2>/dev/null <"$f" | tr -d ' ')
		tr=0
		[ "${size:-0}" -gt "$DL_MAXBYTES" ] && tr=1
		sec file "path=$f" "size=$size" "truncated=$tr"
		head -c "$DL_MAXBYTES" "$f"
		echo
	done
fi

# --- shell history --------------------------------------------------------------
if want history; then
	for h in $HOMES; do
		for f in .bash_history .zsh_history .ash_history .sh_history .local/share/fish/fish_history; do
			[ -r "$h/$f" ] || continue
			# The whole file's lines and hash, and the hash of its first 30
			# lines: a cloned VM's history, even added to after.
			if have sha256sum; then
				sec history "file=$h/$f" "lines=$(wc -l <"$h/$f")" "sum=$(sha256sum <"$h/$f" | cut -c 1-64)" "head=$(head -n 30 "$h/$f" | sha256sum | cut -c 1-64)"
			else
				sec history "file=$h/$f"
			fi
			grep -aE 'loadtest|autocannon|loadgen|(^|[ ;&|(])(ab|wrk|hey|siege|pm2|node|nodejs|npm|curl|systemctl|deploylab)( |$)' "$h/$f" 2>/dev/null | tail -n 300 | cut -c 1-2000
			echo
		done
	done
fi

# --- HTTP from the host to itself ----------------------------------------------
if want http; then
	CURL=$(path_of curl)
	WGET=$(path_of wget)
	BASH=$(path_of bash)
	# http_get HOST PORT PATH MAXSECS OUT: prints "status ms method error", body in OUT.
	http_get() {
		_h=$1 _p=$2 _u=$3 _t=$4 _o=$5
		: >"$_o"
		if [ -n "$CURL" ]; then
			_r=$("$CURL" -sS -o "$_o" --max-filesize 1048576 -w '%{http_code} %{time_total}' --max-time "$_t" "http://$_h:$_p$_u" 2>"$_o.err")
			_c=${_r%% *}
			_s=${_r#* }
			_ms=$(awk -v s="$_s" 'BEGIN{printf "%.1f", s*1000}')
			if [ "$_c" = 000 ] || [ -z "$_c" ]; then
				echo "0 $_ms curl $(head -c 200 "$_o.err" | tr '\n' ' ')"
			else
				echo "$_c $_ms curl"
			fi
			return
		fi
		_t0=$(now_ms)
		if [ -n "$WGET" ]; then
			tmo "$((_t + 1))" "$WGET" -q -S -T "$_t" -t 1 -O "$_o" "http://$_h:$_p$_u" 2>"$_o.err" ||
				tmo "$((_t + 1))" "$WGET" -q -S --content-on-error -T "$_t" -t 1 -O "$_o" "http://$_h:$_p$_u" 2>>"$_o.err"
			_c=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$_o.err" | tail -n 1)
			_m=wget
		elif [ -n "$BASH" ]; then
			tmo "$_t" "$BASH" -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1; printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$3" "$1" >&3; head -c 1048576 <&3' \
				sh "$(echo "$_h" | tr -d '[]')" "$_p" "$_u" >"$_o.raw" 2>"$_o.err"
			_c=$(head -n 1 "$_o.raw" | sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p')
			sed '1,/^\r*$/d' "$_o.raw" >"$_o"
			_m=devtcp
		else
			echo "0 -1 none no http client on the host"
			return
		fi
		_t1=$(now_ms)
		_ms=-1
		[ -n "$_t0" ] && [ -n "$_t1" ] && _ms=$((_t1 - _t0))
		if [ -z "$_c" ]; then
			echo "0 $_ms $_m $(head -c 200 "$_o.err" | tr '\n' ' ')"
		else
			echo "$_c $_ms $_m"
		fi
	}
	# ports to probe: "port host"
	{
		if [ "$DL_ONLY_PORTS" != 1 ]; then
			[ -f "$T/ports" ] && awk '$3==1 {print $1, $2}' "$T/ports"
		fi
		for p in $DL_PORTS; do
			h=$(awk -v p="$p" '$1==p {print $2; exit}' "$T/ports" 2>/dev/null)
			echo "$p ${h:-127.0.0.1}"
		done
	} | awk '!seen[$1]++' | head -n 12 >"$T/probe"
	set -f
	while read -r port host; do
		case $host in
		127.* | '[::1]' | ::1) ;;
		'*' | 0.0.0.0 | '[::]' | '::' | '[::ffff:0.0.0.0]') host=127.0.0.1 ;;
		*)
			note "http: port $port listens on $host only, not on loopback: not probed"
			continue
			;;
		esac
		case $host in ::1) host='[::1]' ;; esac
		echo "$port $host" >>"$T/probed"
		for u in $DL_PATHS; do
			r=$(http_get "$host" "$port" "$u" "$DL_HTTP_TIMEOUT" "$T/body")
			sec http "port=$port" "path=$u" "result=$r"
			head -c 4096 "$T/body"
			echo
		done
	done <"$T/probe"

	# --- blocking experiment: a short request while a heavy one runs -------------
	if [ -n "$DL_BLOCK_HEAVY" ] && [ -f "$T/probed" ]; then
		n=0
		while read -r port host; do
			if [ -n "$DL_BLOCK_PORTS" ]; then
				case " $DL_BLOCK_PORTS " in *" $port "*) ;; *) continue ;; esac
			fi
			n=$((n + 1))
			[ $n -le 4 ] || break
			t0=$(now_ms)
			(http_get "$host" "$port" "$DL_BLOCK_HEAVY" 20 "$T/heavy" >"$T/heavy.res") &
			hp=$!
			sleep 0.5 2>/dev/null || sleep 1
			t1=$(now_ms)
			off=500
			[ -n "$t0" ] && [ -n "$t1" ] && off=$((t1 - t0))
			short=$(http_get "$host" "$port" "$DL_BLOCK_SHORT" 15 "$T/short")
			wait "$hp"
			sec blocking "port=$port" "heavy=$DL_BLOCK_HEAVY" "short=$DL_BLOCK_SHORT" "offset=$off" "heavy_result=$(cat "$T/heavy.res")" "short_result=$short"
			head -c 200 "$T/short"
			echo
		done <"$T/probed"
	fi
	set +f
fi

# --- commands the rubric asked for ---------------------------------------------------
if want commands; then
	i=1
	while [ "$i" -le "$DL_CMDS" ]; do
		eval "name=\${DL_CMD_${i}_NAME}; cmd=\${DL_CMD_${i}}"
		echo 1 >"$T/rc"
		{
			tmo 20 sh -c "$cmd" 2>&1 </dev/null
			echo $? >"$T/rc"
		} | head -c 65536 >"$T/cmd"
		rc=$(cat "$T/rc")
		sec command "name=$name" "exit=$rc"
		head -c 4096 "$T/cmd"
		echo
		i=$((i + 1))
	done
fi

sec end
