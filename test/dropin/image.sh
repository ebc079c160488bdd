# shellcheck shell=bash
# image.sh — a busybox OCI image built offline (sourced by scripts/dropin.sh).
#
# build_image DIR : DIR/oci is an OCI image layout with one image tagged "latest"
# (Debian's busybox-static, every applet hard-linked like the upstream busybox
# image, /etc/passwd with root and nobody; CMD sh), and DIR/busybox-oci.tar is the
# same layout as an oci-archive tar for `ctr images import` / `podman load`.
# Needs: busybox-static, umoci.

build_image() {
	local d=$1 r=$1/rootfs a
	local bb=${DROPIN_BUSYBOX:-/bin/busybox}
	[[ -x $bb && $(ldd "$bb" 2>&1) == *"not a dynamic executable"* ]] || {
		echo "build_image: $bb is not a static busybox (apt-get install busybox-static)" >&2
		return 1
	}
	rm -rf "$r" "$d/oci"
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,home}
	chmod 1777 "$r/tmp"
	cp "$bb" "$r/bin/busybox"
	while read -r a; do
		[[ -e $r/$a ]] || ln "$r/bin/busybox" "$r/$a"
	done < <("$bb" --list-full)
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$d/layer.tar" .
	umoci init --layout "$d/oci" &&
		umoci new --image "$d/oci:latest" &&
		umoci raw add-layer --image "$d/oci:latest" "$d/layer.tar" &&
		umoci config --image "$d/oci:latest" --config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			--config.cmd=sh --os linux --architecture "$(go_arch)" &&
		tar -C "$d/oci" -cf "$d/busybox-oci.tar" . &&
		rm -rf "$r" "$d/layer.tar"
}

go_arch() {
	case $(uname -m) in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) uname -m ;;
	esac
}
