package storage

import (
	"testing"

	"github.com/hull-runtime/hull/image/snapshot"
)

func BenchmarkStat(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Create(b.Context(), "k", "", snapshot.KindActive, CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Stat(b.Context(), "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateRemove(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for b.Loop() {
		if _, err := s.Create(b.Context(), "k", "", snapshot.KindActive, CreateOptions{Work: true}); err != nil {
			b.Fatal(err)
		}
		if err := s.Remove(b.Context(), "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	root := b.TempDir()
	s, err := Open(root)
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	for b.Loop() {
		s, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
