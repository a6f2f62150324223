package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/dbtest"
	"github.com/sloworks/broker/db/sqlite"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	dbtest.Run(t, func(t *testing.T) db.Store {
		return open(t, filepath.Join(t.TempDir(), "broker.db"))
	})
}
