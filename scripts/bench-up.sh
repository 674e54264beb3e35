#!/usr/bin/env bash
# bench-up.sh: times `deploylab up` cold (fresh hosts) and warm (nothing to
# change) on 1 lab host and on HOSTS, and an equivalent Ansible playbook in
# the same way on the same hosts: gather facts, copy the same three programs
# to /opt/deploylab/bin, template the same two systemd units, the systemd
# module (daemon-reload, enable, start), a restart handler, and an HTTP check
# of both servers from the host (uri). Ansible runs tuned: pipelining on,
# ControlPersist (its default), forks = HOSTS.
#
# Goals (issue 4): warm up <= 1/5 of Ansible's warm time; up on HOSTS hosts
# <= 2x up on one. Prints a table of times and ratios.
#
# Between the two tools `deploylab down` returns the hosts to fresh (it also
# removes Ansible's copy, which uses the same paths and unit names), and
# checks that nothing is left.
#
# Environment:
#   HOSTS=10   lab hosts (node variant: it has the python3 Ansible needs)
#   ROUNDS=1   warm runs per measurement (the median is reported)
#   KEEP=0     1: leave the lab running
# Needs: root, systemd-container and debootstrap (the lab), go; installs
# Debian's ansible package if ansible-playbook is missing.
set -euo pipefail

HOSTS=${HOSTS:-10}
ROUNDS=${ROUNDS:-1}
KEEP=${KEEP:-0}

die() { echo "bench-up: error: $*" >&2; exit 1; }
GO=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$GO" ] || die "go not found"
[ "$(id -u)" = 0 ] || die "the lab needs root"
[ "$HOSTS" -ge 2 ] || die "HOSTS must be 2 or more"
if ! command -v ansible-playbook >/dev/null; then
	echo "bench-up: installing Debian's ansible package (once)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ansible >/dev/null ||
		die "could not install ansible: apt-get install ansible"
fi

cd "$(dirname "$0")/.."
work=$(mktemp -d)
dl="$work/deploylab"
labdir="$work/lab"
cleanup() {
	if [ "$KEEP" != 1 ] && [ -f "$labdir/lab.json" ]; then "$dl" lab stop --lab-dir "$labdir" >/dev/null 2>&1 || true; fi
	[ "$KEEP" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

"$GO" build -o "$dl" ./cmd/deploylab
mkdir -p "$work/files" "$work/templates"
# Ansible copies the same programs, built the way deploylab builds them.
for pkg in ./payload/sumserver/cmd/sumserver ./payload/cluster/cmd/sumcluster ./payload/loadgen/cmd/loadgen; do
	CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -o "$work/files/$(basename "$pkg")" "$pkg"
done

t0=$(date +%s.%N)
"$dl" lab start --hosts "$HOSTS" --variant node --lab-dir "$labdir" >/dev/null
printf 'lab: %d hosts started in %.1fs\n' "$HOSTS" "$(echo "$(date +%s.%N) - $t0" | bc)"
inv="$labdir/inventory.yaml"

# Ansible's inventory from the lab's: same hosts, user, key, known_hosts.
python3 - "$inv" >"$work/hosts.ini" <<'EOF'
import sys, yaml
inv = yaml.safe_load(open(sys.argv[1]))
v = inv.get("vars") or {}
print("[lab]")
hosts = inv["hosts"]
items = hosts.items() if isinstance(hosts, dict) else [(h["name"], h) for h in hosts]
for name, h in items:
    hv = dict(v); hv.update({k: x for k, x in (h or {}).items() if x})
    print(f"{name} ansible_host={hv['address']} ansible_port={hv.get('port', 22)} ansible_user={hv['user']} "
          f"ansible_ssh_private_key_file={hv['key']} "
          f"ansible_ssh_common_args='-o UserKnownHostsFile={hv['known_hosts']} -o StrictHostKeyChecking=yes'")
EOF
cat >"$work/ansible.cfg" <<EOF
[defaults]
inventory = $work/hosts.ini
forks = $HOSTS
host_key_checking = True
retry_files_enabled = False
interpreter_python = /usr/bin/python3
stdout_callback = default
[ssh_connection]
pipelining = True
EOF
export ANSIBLE_CONFIG="$work/ansible.cfg"
cat >"$work/up.yml" <<'EOF'
- hosts: lab
  become: true
  gather_facts: true
  tasks:
    - name: bin directory
      ansible.builtin.file: {path: /opt/deploylab/bin, state: directory, mode: "0755"}
    - name: programs
      ansible.builtin.copy: {src: "files/{{ item }}", dest: "/opt/deploylab/bin/{{ item }}", mode: "0755"}
      loop: [sumserver, sumcluster, loadgen]
      notify: restart
    - name: units
      ansible.builtin.template: {src: "templates/deploylab-{{ item }}.service.j2", dest: "/etc/systemd/system/deploylab-{{ item }}.service", mode: "0644"}
      loop: [sumserver, sumcluster]
      notify: restart
    - name: services
      ansible.builtin.systemd: {name: "deploylab-{{ item }}.service", enabled: true, state: started, daemon_reload: true}
      loop: [sumserver, sumcluster]
    - name: flush handlers
      ansible.builtin.meta: flush_handlers
    - name: verify
      ansible.builtin.uri: {url: "http://127.0.0.1:{{ item }}/api/50", return_content: true}
      register: r
      failed_when: r.content != "Final count is 1275"
      retries: 20
      delay: 1
      until: r.status == 200
      loop: [3000, 3001]
  handlers:
    - name: restart
      ansible.builtin.systemd: {name: "deploylab-{{ item }}.service", state: restarted, daemon_reload: true}
      loop: [sumserver, sumcluster]
EOF

now() { date +%s.%N; }
# busy: CPU seconds the whole machine has spent (lab hosts share its kernel).
busy() { awk '/^cpu /{print ($2+$3+$4+$7+$8)/100}' /proc/stat; }
declare -A T C
# timed NAME CMD...: runs CMD ROUNDS times (once for cold runs), keeps the median.
timed() {
	local name=$1 n=$2
	shift 2
	local times=() cpus=()
	for _ in $(seq "$n"); do
		local s c
		s=$(now) c=$(busy)
		"$@" >"$work/last.log" 2>&1 || { echo "bench-up: $name failed:"; tail -n 30 "$work/last.log"; exit 1; }
		times+=("$(echo "$(now) - $s" | bc)")
		cpus+=("$(echo "$(busy) - $c" | bc)")
	done
	T[$name]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	C[$name]=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	printf '  %-22s %6.2fs  (machine CPU busy %.2fs; %d cores)\n' "$name" "${T[$name]}" "${C[$name]}" "$(nproc)"
}
down_all() {
	"$dl" down -i "$inv" --forks "$HOSTS" >"$work/down.log" 2>&1 || { echo "bench-up: down failed:"; tail -n 20 "$work/down.log"; exit 1; }
}

# The payload is built once before timing (a workstation keeps it cached).
"$dl" up -i "$inv" --limit lab1 --check >/dev/null 2>&1 || true

for n in 1 "$HOSTS"; do
	if [ "$n" = 1 ]; then limit=(--limit lab1); else limit=(); fi
	echo "$n host(s):"
	timed "up-cold-$n" 1 "$dl" up -i "$inv" "${limit[@]}" --forks "$HOSTS"
	timed "up-warm-$n" "$ROUNDS" "$dl" up -i "$inv" "${limit[@]}" --forks "$HOSTS"
	# Where a warm run's time goes: each task's mean duration over the hosts.
	"$dl" up -i "$inv" "${limit[@]}" --forks "$HOSTS" --json >"$work/warm.json" || true
	python3 - "$work/warm.json" <<'EOF'
import json, sys, collections
d = json.load(open(sys.argv[1]))
t = collections.defaultdict(list)
for h in d["hosts"]:
    for r in h["tasks"]:
        t[r["task"]].append(r["duration_ms"])
print("    warm tasks, mean ms per host: " + ", ".join(f"{k} {sum(v)/len(v):.0f}" for k, v in t.items()))
EOF
	if [ ! -f "$work/templates/deploylab-sumserver.service.j2" ]; then
		for s in sumserver sumcluster; do
			"$dl" lab ssh 1 --lab-dir "$labdir" -- cat /etc/systemd/system/deploylab-$s.service >"$work/templates/deploylab-$s.service.j2"
		done
	fi
	down_all
	timed "ansible-cold-$n" 1 ansible-playbook "${limit[@]}" "$work/up.yml"
	timed "ansible-warm-$n" "$ROUNDS" ansible-playbook "${limit[@]}" "$work/up.yml"
	grep -q 'changed=0 ' "$work/last.log" || echo "  (warning: the warm ansible run changed something)"
	down_all
done

ratio() { echo "scale=3; $1 / $2" | bc; }
m=$HOSTS
echo
printf '%-26s %10s %10s %10s\n' "" "deploylab" "ansible" "up/ansible"
for k in cold-1 warm-1 "cold-$m" "warm-$m"; do
	printf '%-26s %9.2fs %9.2fs %10.3f\n' "$k" "${T[up-$k]}" "${T[ansible-$k]}" "$(ratio "${T[up-$k]}" "${T[ansible-$k]}")"
done
w=$(ratio "${T[up-warm-1]}" "${T[ansible-warm-1]}")
s=$(ratio "${T[up-cold-$m]}" "${T[up-cold-1]}")
sw=$(ratio "${T[up-warm-$m]}" "${T[up-warm-1]}")
echo
printf 'warm up / warm ansible (1 host):   %.3f  (goal <= 0.200: %s)\n' "$w" "$([ "$(echo "$w <= 0.2" | bc)" = 1 ] && echo met || echo NOT met)"
printf 'up %d hosts / 1 host, cold:         %.2f   (goal <= 2: %s)\n' "$m" "$s" "$([ "$(echo "$s <= 2" | bc)" = 1 ] && echo met || echo NOT met)"
printf 'up %d hosts / 1 host, warm:         %.2f   (goal <= 2: %s)\n' "$m" "$sw" "$([ "$(echo "$sw <= 2" | bc)" = 1 ] && echo met || echo NOT met)"
