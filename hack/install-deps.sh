#!/usr/bin/env bash
# Installs the Debian packages bgplb's tests and lab use, without leaving any
# of their daemons running. Idempotent: when every package is already
# installed it does not touch apt at all. Needs root only when something is
# missing. Works without a TTY; talks to nothing but the configured apt mirror.
set -euo pipefail

# runc: the image test runs the built image as an OCI bundle (internal/image).
# podman, containerd (ctr), docker.io: the image's tarballs are loaded and run
# by each engine, every daemon private to the test (internal/image).
# containernetworking-plugins, iptables, conntrack: the lab's nodes run
# containerd, a kubelet and kube-proxy (lab/kubenode).
PACKAGES=(iproute2 gobgpd bird2 frr exabgp iputils-ping dnsutils tcpdump runc
	podman containerd docker.io containernetworking-plugins iptables conntrack)
# Daemons those packages may start on install, and the systemd units behind
# them (UNIT=PACKAGE when the unit is not named after its package).
DAEMONS=(bird gobgpd exabgp watchfrr zebra bgpd staticd mgmtd containerd dockerd)
UNITS=(bird=bird2 gobgpd exabgp frr containerd docker.socket=docker.io docker=docker.io
	podman.socket=podman podman=podman podman-restart=podman podman-auto-update.timer=podman
	podman-auto-update=podman)

log() { printf 'install-deps: %s\n' "$*"; }

installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

check_go() {
	if [[ -d /usr/local/go/bin && ":$PATH:" != *":/usr/local/go/bin:"* ]]; then
		export PATH="/usr/local/go/bin:$PATH"
	fi
	if ! command -v go >/dev/null 2>&1; then
		log "go not found (expected in /usr/local/go/bin); install Go 1.26 first" >&2
		exit 1
	fi
	log "$(go version)"
}

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	log "all packages already installed: ${PACKAGES[*]}"
	check_go
	exit 0
fi

log "missing packages: ${missing[*]}"
if ((EUID != 0)); then
	log "must run as root to install them" >&2
	exit 1
fi

# Keep package scripts from starting services (invoke-rc.d honours exit 101).
policy=/usr/sbin/policy-rc.d
policy_backup=""
if [[ -e "$policy" ]]; then
	policy_backup="$(mktemp)"
	cp -p "$policy" "$policy_backup"
fi
restore_policy() {
	if [[ -n "$policy_backup" ]]; then
		log "restoring the previous $policy"
		cp -p "$policy_backup" "$policy"
		rm -f "$policy_backup"
	else
		log "removing temporary $policy"
		rm -f "$policy"
	fi
}
trap restore_policy EXIT
log "writing $policy (exit 101: no service starts during install)"
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 0755 "$policy"

# Remember which daemons ran before, so only ones the install started are killed.
declare -A before=()
for d in "${DAEMONS[@]}"; do
	for pid in $(pgrep -x "$d" || true); do before[$pid]=1; done
done

start=$SECONDS
log "apt-get update"
apt-get -q update </dev/null
log "apt-get install ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${missing[@]}" </dev/null
log "installed in $((SECONDS - start))s"

# Stop and disable the default instances of units this run installed. systemd
# may be absent or not running (containers): errors are ignored.
if command -v systemctl >/dev/null 2>&1; then
	for entry in "${UNITS[@]}"; do
		u=${entry%%=*} pkg=${entry#*=}
		[[ " ${missing[*]} " == *" $pkg "* ]] || continue
		# A bare name is a service; a socket or timer would restart it.
		[[ $u == *.* ]] || u=$u.service
		log "systemctl stop/disable $u (errors ignored)"
		systemctl stop "$u" >/dev/null 2>&1 || true
		systemctl disable "$u" >/dev/null 2>&1 || true
	done
fi

# Kill daemons that started anyway, leaving alone any that ran before.
new_daemons() {
	local d pid
	for d in "${DAEMONS[@]}"; do
		for pid in $(pgrep -x "$d" || true); do
			[[ -n "${before[$pid]:-}" ]] || echo "$pid"
		done
	done
}
pids=($(new_daemons))
if ((${#pids[@]} > 0)); then
	for pid in "${pids[@]}"; do
		log "stopping $(ps -o comm= -p "$pid" 2>/dev/null || echo '?') (pid $pid), started by the install"
		kill "$pid" 2>/dev/null || true
	done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pids=($(new_daemons))
		((${#pids[@]} == 0)) && break
		sleep 0.5
	done
	if ((${#pids[@]} > 0)); then
		log "killing survivors: ${pids[*]}"
		kill -KILL "${pids[@]}" 2>/dev/null || true
	fi
else
	log "no daemon was started by the install"
fi

check_go
