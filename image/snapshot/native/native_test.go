package native_test

import (
	"os"
	"testing"

	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/image/snapshot/native"
	"github.com/hull-runtime/hull/image/snapshot/testsuite"
)

func TestSuite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testsuite.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		t.Helper()
		s, err := native.New(root)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
