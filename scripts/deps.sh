#!/usr/bin/env bash
# Installs what hull needs to build and test on Debian 12: only Debian packages and Go modules.
set -euo pipefail
pkgs=(busybox-static libseccomp-dev pkg-config gcc make git runc crun uidmap iproute2 util-linux procps criu iptables tar gzip hyperfine qemu-system-x86)
pkgs+=(podman conmon containerd umoci) # scripts/dropin.sh: Podman 4.3 and containerd 1.6 drive hull-runtime
pkgs+=(docker-registry skopeo) # image tests: a real registry on 127.0.0.1 (../shared/conformance/seed-images.sh)
pkgs+=(slirp4netns) # rootless hull: a container network without root (engine/slirp)
pkgs+=(containernetworking-plugins) # hull's networks: CNI bridge, host-local, portmap, loopback (engine/network)
pkgs+=(python3 curl) # test scripts: free ports (scripts/cri-harness.sh), registry checks (seed-images.sh)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then export PATH=/usr/local/go/bin:$PATH; else
		apt-get install -y -qq --no-install-recommends golang-go; fi
fi
GOBIN=$(go env GOPATH)/bin
[ -x "$GOBIN/staticcheck" ] || go install honnef.co/go/tools/cmd/staticcheck@latest
go mod download
