package engine

import (
	"strings"
	"testing"
)

func TestMountFlagMeansWhatDockerSays(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ in, volume, tmpfs, err string }{
		{in: "type=volume,source=data,target=/srv", volume: "data:/srv"},
		{in: "source=data,target=/srv,readonly", volume: "data:/srv:ro"},
		{in: "src=data,dst=/srv,ro=false", volume: "data:/srv"},
		{in: "target=/cache", volume: "/cache"},
		{in: "type=bind,source=" + dir + ",target=/in,readonly,bind-propagation=rslave", volume: dir + ":/in:ro,rslave"},
		{in: "type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1777", tmpfs: "/run:size=64m,mode=1777"},
		{in: "type=tmpfs,destination=/tmp", tmpfs: "/tmp"},
		{in: "type=bind,source=/no/such/dir,target=/x", err: "bind source path does not exist"},
		{in: "type=bind,source=rel,target=/x", err: "absolute source"},
		{in: "type=volume,source=/abs,target=/x", err: "volume name"},
		{in: "type=tmpfs,source=x,target=/x", err: "no source"},
		{in: "type=nfs,target=/x", err: `type "nfs"`},
		{in: "source=data", err: "target must be an absolute path"},
		{in: "target=/x,color=blue", err: `unknown key "color"`},
		{in: "target=/x,readonly=maybe", err: "not a boolean"},
		{in: "type=volume,source=v,target=/x,tmpfs-size=1m", err: "tmpfs options"},
	} {
		v, tm, err := ParseMountFlag(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || v != tc.volume || tm != tc.tmpfs {
			t.Errorf("%s: %q %q %v, want %q %q", tc.in, v, tm, err, tc.volume, tc.tmpfs)
		}
	}
}
