// Package proc reads what the engine needs from /proc.
package proc

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// StartTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot. With the pid it names one process for good, so a
// recorded pid is not mistaken for a later process that reuses it.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("/proc/" + strconv.Itoa(pid) + "/stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("/proc/" + strconv.Itoa(pid) + "/stat: too few fields")
	}
	return strconv.ParseUint(f[19], 10, 64)
}
