#!/usr/bin/env bash
# Builds etcd, kubectl and the Kubernetes components (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy) from the pinned
# module in hack/k8sbin into
# $BGPLB_CACHE/k8s/<version>/ (default ~/.cache/bgplb/k8s/<version>/), where
# internal/controlplane finds them. Nothing prebuilt can be downloaded on these
# machines, so the binaries come from source: the first build compiles
# Kubernetes, ~12 min on 2 cores for kube-apiserver, etcd and kubectl, and
# ~8 min more for the other four (a Go build cache of several GB); later
# builds reuse that cache and only link, ~1 min, and a present, current
# build is skipped in a second.
#
# "Current" means the stamp file beside the binaries matches a hash of the
# recipe (go.mod, go.sum, the mains, the linker flags, the Go version and
# platform), so editing the recipe rebuilds. The build goes to a temporary
# directory that is renamed into place, and a lock keeps two builds (two
# `make test` at once) from racing.
#
# Usage: hack/k8sbin.sh [DEST]
# With BGPLB_K8S_BIN or KUBEBUILDER_ASSETS set, the harness uses those
# binaries instead, and this script only checks that they are there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/k8sbin"
log() { printf 'k8sbin: %s\n' "$*"; }
# No step may fail in silence.
trap 'log "failed at line $LINENO (exit $?): $BASH_COMMAND" >&2' ERR

if [[ -d /usr/local/go/bin && ":$PATH:" != *":/usr/local/go/bin:"* ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi

for var in BGPLB_K8S_BIN KUBEBUILDER_ASSETS; do
	dir="${!var:-}"
	[[ -n "$dir" ]] || continue
	for bin in etcd kube-apiserver; do
		if [[ ! -x "$dir/$bin" ]]; then
			log "$var=$dir has no executable $bin" >&2
			exit 1
		fi
	done
	log "using $var=$dir (not building)"
	exit 0
done

version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$src/go.mod")"
if [[ ! "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
	log "cannot read the k8s.io/kubernetes version from $src/go.mod" >&2
	exit 1
fi
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"
cache="${BGPLB_CACHE:-$HOME/.cache/bgplb}"
# One main per program under hack/k8sbin; the directory names are the
# binaries' names.
bins=(kube-apiserver etcd kubectl kube-controller-manager kube-scheduler kubelet kube-proxy)
dest="${1:-$cache/k8s/$version}"

# The server reports this version (/version, and the compatibility version
# it derives from it); without it a source build calls itself v0.0.0.
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$version -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"

stamp="$(
	cd "$src"
	{
		for b in "${bins[@]}"; do sha256sum "$b/main.go"; done
		sha256sum go.mod go.sum
		printf 'ldflags=%s\n' "$ldflags"
		go version
		go env GOOS GOARCH CGO_ENABLED
	} | sha256sum | cut -d' ' -f1
)"

current() {
	local b
	for b in "${bins[@]}"; do [[ -x "$dest/$b" ]] || return 1; done
	[[ -f "$dest/stamp" && "$(cat "$dest/stamp")" == "$stamp" ]]
}

if current; then
	log "up to date: $dest ($version)"
	exit 0
fi

parent="$(dirname "$dest")"
mkdir -p "$parent"
exec 9>"$parent/.k8sbin.lock"
log "taking the build lock $parent/.k8sbin.lock"
flock 9
if current; then # another build finished while we waited
	log "up to date: $dest ($version)"
	exit 0
fi

tmp="$(mktemp -d "$parent/.build.XXXXXX")"
chmod 0755 "$tmp" # mktemp makes it private; the binaries are for every user
build_pid=""
cleanup() {
	if [[ -n "$build_pid" ]]; then kill "$build_pid" 2>/dev/null || true; fi
	rm -rf "$tmp" "$tmp.old"
}
trap cleanup EXIT

log "building ${bins[*]} $version into $dest"
log "the first build on a machine takes ~20 min (2 cores, cold Go build cache); later ones about a minute"
start=$SECONDS
(
	cd "$src"
	# -trimpath keeps the build cache valid when the module cache or this
	# checkout moves; GOWORK=off so that no go.work outside can change the
	# build; -mod=readonly so that go.sum is used as committed.
	GOWORK=off GOFLAGS="-buildvcs=false -mod=readonly" \
		exec go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${bins[@]/#/./}"
) &
build_pid=$!
next=30
while kill -0 "$build_pid" 2>/dev/null; do
	sleep 1
	if ((SECONDS - start >= next)); then
		log "still building ($((SECONDS - start))s elapsed)"
		next=$((next + 30))
	fi
done
status=0
wait "$build_pid" || status=$?
build_pid=""
if ((status != 0)); then
	log "go build failed (exit $status) after $((SECONDS - start))s" >&2
	exit "$status"
fi

printf '%s\n' "$stamp" >"$tmp/stamp"
"$tmp/kube-apiserver" --version
# sed, not head: head exits after one line, and the writer's SIGPIPE would
# fail the pipeline (pipefail) at random.
"$tmp/etcd" --version | sed -n 1p
"$tmp/kubectl" version --client | sed -n 1p
for b in kube-controller-manager kube-scheduler kubelet kube-proxy; do
	printf '%s: ' "$b"
	"$tmp/$b" --version
done
# Swap in: the old build (if any) moves aside first, so a reader sees either
# the old directory or the new one, each complete.
if [[ -e "$dest" ]]; then mv "$dest" "$tmp.old"; fi
mv "$tmp" "$dest"
log "built $dest in $((SECONDS - start))s"
