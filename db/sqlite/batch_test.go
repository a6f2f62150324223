package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
)

// Batch: the calls inside see each other's writes; all of them are committed together, or none
// when fn fails; CreateLogout's own transaction nests; the store works as before afterwards.
func TestBatch(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "broker.db"))
	ctx := context.Background()
	tn := db.Tenant{Slug: "acme", Name: "Acme"}
	if err := s.CreateTenant(ctx, &tn); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	newSession := func(hash string) *db.Session {
		return &db.Session{TenantID: tn.ID, ConnectionID: "c", CookieHash: hash, NameID: "alice", CreatedAt: time.Now(), ExpiresAt: exp}
	}

	var kept *db.Session
	err := db.Batch(ctx, db.Store(s), func(tx db.Store) error {
		if fresh, err := tx.MarkSeen(ctx, tn.ID, "kept", exp); err != nil || !fresh {
			t.Fatalf("MarkSeen = %v, %v", fresh, err)
		}
		kept = newSession("kept")
		if err := tx.CreateSession(ctx, kept); err != nil {
			return err
		}
		if err := tx.AddParticipant(ctx, &db.Participant{TenantID: tn.ID, SessionID: kept.ID, AppID: "app", NameID: "alice", SessionIndex: "_p"}); err != nil {
			return err
		}
		if ps, err := tx.ListParticipants(ctx, tn.ID, kept.ID); err != nil || len(ps) != 1 {
			t.Fatalf("inside the batch: %d participants, %v", len(ps), err)
		}
		l := db.Logout{TenantID: tn.ID, Trigger: "admin", User: "alice", Deadline: exp}
		return tx.CreateLogout(ctx, &l, []db.LogoutLeg{{Target: "app", TargetID: "app"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, tn.ID, kept.ID); err != nil {
		t.Errorf("committed session: %v", err)
	}
	if again, _ := s.MarkSeen(ctx, tn.ID, "kept", exp); again {
		t.Error("committed replay entry not kept")
	}
	if ls, _ := s.ListLogouts(ctx, tn.ID, db.LogoutFilter{}); len(ls) != 1 {
		t.Errorf("%d logouts; want the batch's one", len(ls))
	}

	boom := errors.New("boom")
	var dropped *db.Session
	err = db.Batch(ctx, db.Store(s), func(tx db.Store) error {
		if _, err := tx.MarkSeen(ctx, tn.ID, "dropped", exp); err != nil {
			return err
		}
		dropped = newSession("dropped")
		if err := tx.CreateSession(ctx, dropped); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Batch = %v; want fn's error", err)
	}
	if _, err := s.GetSession(ctx, tn.ID, dropped.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("session of a failed batch: %v; want ErrNotFound", err)
	}
	if fresh, _ := s.MarkSeen(ctx, tn.ID, "dropped", exp); !fresh {
		t.Error("replay entry of a failed batch was kept")
	}
	if err := s.CreateSession(ctx, newSession("after")); err != nil {
		t.Errorf("write after the batches: %v", err)
	}
}
