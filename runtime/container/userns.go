package container

import (
	"bytes"
	"os"
	"sync"
)

var (
	inUserNSOnce sync.Once
	inUserNS     bool
)

// RunningInUserNS reports whether this process runs in a user namespace
// other than the initial one (a rootless engine's, say): there the runtime
// is root only in name. It cannot mknod devices (they are bind-mounted from
// the host instead) and cannot make cgroups unless some were delegated, so
// with --rootless auto it behaves as rootless.
func RunningInUserNS() bool {
	inUserNSOnce.Do(func() {
		b, err := os.ReadFile("/proc/self/uid_map")
		if err != nil {
			return
		}
		// The initial namespace maps the whole range: "0 0 4294967295".
		f := bytes.Fields(b)
		inUserNS = !(len(f) == 3 && string(f[0]) == "0" && string(f[1]) == "0" && string(f[2]) == "4294967295")
	})
	return inUserNS
}
