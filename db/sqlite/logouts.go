package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/sloworks/broker/db"
)

// Logouts and their legs (the logout log).

type logoutRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	TenantID    string `gorm:"column:tenant_id"`
	TriggerKind string `gorm:"column:trigger_kind"`
	TriggerRef  string `gorm:"column:trigger_ref"`
	NameID      string `gorm:"column:name_id"`
	SessionIDs  string `gorm:"column:session_ids"` // JSON array of strings
	State       string `gorm:"column:state"`
	Outcome     string `gorm:"column:outcome"`
	Initiator   []byte `gorm:"column:initiator"`
	StartedAt   int64  `gorm:"column:started_at"`
	FinishedAt  *int64 `gorm:"column:finished_at"`
	Deadline    int64  `gorm:"column:deadline"`
}

// TableName is the logouts table.
func (logoutRow) TableName() string { return "logouts" }

// encodeIDs is the stored form of a list of session IDs: a JSON array, [] for none.
func encodeIDs(ids []string) string {
	if len(ids) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ids) // a []string always marshals
	return string(b)
}

// decodeIDs is the inverse of encodeIDs; none is nil.
func decodeIDs(s string) ([]string, error) {
	var ids []string
	if err := json.Unmarshal([]byte(s), &ids); err != nil {
		return nil, fmt.Errorf("decode session IDs: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return ids, nil
}

func (r *logoutRow) record() (db.Logout, error) {
	ids, err := decodeIDs(r.SessionIDs)
	if err != nil {
		return db.Logout{}, fmt.Errorf("logout %s: %w", r.ID, err)
	}
	return db.Logout{ID: r.ID, TenantID: r.TenantID, Trigger: r.TriggerKind, TriggerRef: r.TriggerRef, User: r.NameID,
		SessionIDs: ids, State: r.State, Outcome: r.Outcome, Initiator: unblob(r.Initiator),
		StartedAt: fromMicros(r.StartedAt), FinishedAt: fromOptMicros(r.FinishedAt), Deadline: fromMicros(r.Deadline)}, nil
}

// fromOptMicros is fromMicros for an optional time; NULL stays nil.
func fromOptMicros(us *int64) *time.Time {
	if us == nil {
		return nil
	}
	t := fromMicros(*us)
	return &t
}

type legRow struct {
	ID         string `gorm:"column:id;primaryKey"`
	TenantID   string `gorm:"column:tenant_id"`
	LogoutID   string `gorm:"column:logout_id"`
	Seq        int64  `gorm:"column:seq"`
	Target     string `gorm:"column:target"`
	TargetID   string `gorm:"column:target_id"`
	TargetName string `gorm:"column:target_name"`
	Channel    string `gorm:"column:channel"`
	RequestID  string `gorm:"column:request_id"`
	State      string `gorm:"column:state"`
	Status     string `gorm:"column:status"`
	SubStatus  string `gorm:"column:sub_status"`
	LatencyMS  int64  `gorm:"column:latency_ms"`
	ErrorClass string `gorm:"column:error_class"`
	Diagnosis  string `gorm:"column:diagnosis"`
	Sent       []byte `gorm:"column:sent"`
	Received   []byte `gorm:"column:received"`
	StartedAt  int64  `gorm:"column:started_at"`
	FinishedAt *int64 `gorm:"column:finished_at"`
}

// TableName is the logout_legs table.
func (legRow) TableName() string { return "logout_legs" }

func (r *legRow) record() db.LogoutLeg {
	return db.LogoutLeg{ID: r.ID, TenantID: r.TenantID, LogoutID: r.LogoutID, Target: r.Target, TargetID: r.TargetID,
		TargetName: r.TargetName, Channel: r.Channel, RequestID: r.RequestID, State: r.State, Status: r.Status,
		SubStatus: r.SubStatus, LatencyMS: r.LatencyMS, ErrorClass: r.ErrorClass, Diagnosis: r.Diagnosis,
		Sent: unblob(r.Sent), Received: unblob(r.Received), StartedAt: fromMicros(r.StartedAt),
		FinishedAt: fromOptMicros(r.FinishedAt)}
}

// CreateLogout creates l and its legs in one transaction (see db.Logouts). The legs keep the
// order given: seq is their index in legs.
func (s *Store) CreateLogout(ctx context.Context, l *db.Logout, legs []db.LogoutLeg) error {
	now := s.now()
	n := *l
	if n.ID == "" {
		n.ID = newID()
	}
	if n.StartedAt.IsZero() {
		n.StartedAt = now
	}
	if n.State == "" {
		n.State = db.LogoutRunning
	}
	out := make([]db.LogoutLeg, len(legs))
	for i, g := range legs {
		g.TenantID, g.LogoutID = n.TenantID, n.ID
		if g.ID == "" {
			g.ID = newID()
		}
		if g.StartedAt.IsZero() {
			g.StartedAt = now
		}
		if g.State == "" {
			g.State = db.LegPending
		}
		out[i] = g
	}
	err := s.atomically(ctx, func(tx *Store) error {
		_, err := tx.exec(ctx, sCreateLogout, n.ID, n.TenantID, n.Trigger, n.TriggerRef, n.User, encodeIDs(n.SessionIDs),
			n.State, n.Outcome, blob(n.Initiator), micros(n.StartedAt), nullMicros(n.FinishedAt), micros(n.Deadline))
		if err != nil {
			return err
		}
		for i := range out {
			g := &out[i]
			_, err := tx.exec(ctx, sCreateLeg, g.ID, g.TenantID, g.LogoutID, int64(i), g.Target, g.TargetID, g.TargetName,
				g.Channel, g.RequestID, g.State, g.Status, g.SubStatus, g.LatencyMS, g.ErrorClass, g.Diagnosis, blob(g.Sent),
				blob(g.Received), micros(g.StartedAt), nullMicros(g.FinishedAt))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create logout: %w", translate(err))
	}
	l.ID, l.StartedAt, l.State = n.ID, n.StartedAt, n.State
	copy(legs, out)
	return nil
}

// GetLogout returns the tenant's logout and its legs, read in one transaction so the legs are
// those of the logout as returned.
func (s *Store) GetLogout(ctx context.Context, tenantID, id string) (*db.Logout, []db.LogoutLeg, error) {
	var lr logoutRow
	var rows []legRow
	err := s.r.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("tenant_id = ? AND id = ?", tenantID, id).Take(&lr).Error; err != nil {
			return err
		}
		return tx.Where("tenant_id = ? AND logout_id = ?", tenantID, id).Order("seq").Find(&rows).Error
	})
	if err != nil {
		return nil, nil, fmt.Errorf("get logout: %w", translate(err))
	}
	l, err := lr.record()
	if err != nil {
		return nil, nil, fmt.Errorf("get logout: %w", err)
	}
	legs := make([]db.LogoutLeg, 0, len(rows))
	for i := range rows {
		legs = append(legs, rows[i].record())
	}
	return &l, legs, nil
}

// updateWhile runs update, an UPDATE of the row (tenantID, id) while it is not final, with
// args: no such row in the tenant is db.ErrNotFound, a final row is db.ErrConflict. The
// conditional UPDATE is one statement, atomic on its own; only when it matches nothing does
// count, a second one, tell the two cases apart.
func (s *Store) updateWhile(ctx context.Context, what string, update, count stmtID, tenantID, id string, args ...any) error {
	n, err := s.exec(ctx, update, args...)
	if err != nil {
		return fmt.Errorf("update %s: %w", what, translate(err))
	}
	if n > 0 {
		return nil
	}
	if n, err = s.count(ctx, count, tenantID, id); err != nil {
		return fmt.Errorf("update %s: %w", what, translate(err))
	}
	if n == 0 {
		return fmt.Errorf("update %s: %w", what, db.ErrNotFound)
	}
	return fmt.Errorf("update %s: %s is final: %w", what, what, db.ErrConflict)
}

// UpdateLogout stores every field of l but ID, TenantID and StartedAt, if the stored logout is
// running; a finished one is db.ErrConflict.
func (s *Store) UpdateLogout(ctx context.Context, l *db.Logout) error {
	return s.updateWhile(ctx, "logout", sUpdateLogout, sCountLogout, l.TenantID, l.ID,
		l.Trigger, l.TriggerRef, l.User, encodeIDs(l.SessionIDs), l.State, l.Outcome, blob(l.Initiator),
		nullMicros(l.FinishedAt), micros(l.Deadline), l.TenantID, l.ID, db.LogoutRunning)
}

// UpdateLeg stores every field of the leg but ID, TenantID and LogoutID, if the stored leg is
// pending; a done one is db.ErrConflict, and so is a RequestID another leg of the tenant has.
func (s *Store) UpdateLeg(ctx context.Context, g *db.LogoutLeg) error {
	return s.updateWhile(ctx, "logout leg", sUpdateLeg, sCountLeg, g.TenantID, g.ID,
		g.Target, g.TargetID, g.TargetName, g.Channel, g.RequestID, g.State, g.Status, g.SubStatus, g.LatencyMS,
		g.ErrorClass, g.Diagnosis, blob(g.Sent), blob(g.Received), micros(g.StartedAt), nullMicros(g.FinishedAt),
		g.TenantID, g.ID, db.LegPending)
}

// FinishLeg records the leg's result if it is pending, in one conditional UPDATE ... RETURNING
// (see db.Logouts): of concurrent calls exactly one matches the pending row.
func (s *Store) FinishLeg(ctx context.Context, tenantID, legID string, g *db.LogoutLeg) (bool, error) {
	finished := s.now()
	if g.FinishedAt != nil {
		finished = *g.FinishedAt
	}
	// The message sent is stored with the result when given (one write instead of two).
	update := sFinishLeg
	args := []any{db.LegDone, g.Status, g.SubStatus, g.LatencyMS, g.ErrorClass, g.Diagnosis, blob(g.Received), micros(finished)}
	if len(g.Sent) > 0 {
		update = sFinishLegSent
		args = append(args, g.Sent)
	}
	args = append(args, tenantID, legID, db.LegPending)
	// The conditional UPDATE is atomic on its own; only when it matches nothing does a second
	// statement tell a done leg from a missing one.
	var stored db.LogoutLeg
	err := s.queryRow(ctx, update, func(scan func(...any) error) (err error) {
		stored, err = scanLeg(scan)
		return err
	}, args...)
	if errors.Is(err, sql.ErrNoRows) {
		n, err := s.count(ctx, sCountLeg, tenantID, legID)
		if err != nil {
			return false, fmt.Errorf("finish logout leg: %w", translate(err))
		}
		if n == 0 {
			return false, fmt.Errorf("finish logout leg: %w", db.ErrNotFound)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("finish logout leg: %w", translate(err))
	}
	*g = stored
	return true, nil
}

// GetLegByRequestID returns the tenant's leg with the given non-empty request ID.
func (s *Store) GetLegByRequestID(ctx context.Context, tenantID, requestID string) (*db.LogoutLeg, error) {
	if requestID == "" {
		return nil, fmt.Errorf("get logout leg: %w", db.ErrNotFound)
	}
	var g db.LogoutLeg
	err := s.queryRow(ctx, sGetLegByRequestID, func(scan func(...any) error) (err error) {
		g, err = scanLeg(scan)
		return err
	}, tenantID, requestID)
	if err != nil {
		return nil, fmt.Errorf("get logout leg: %w", translate(err))
	}
	return &g, nil
}

// listLogouts runs q (conditions already set) ordered by order and converts the rows.
func listLogouts(q *gorm.DB, what, order string) ([]db.Logout, error) {
	var rows []logoutRow
	if err := q.Order(order).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("%s: %w", what, translate(err))
	}
	out := make([]db.Logout, 0, len(rows))
	for i := range rows {
		l, err := rows[i].record()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// ListLogouts returns the tenant's logouts matching f, newest first (see db.Logouts).
func (s *Store) ListLogouts(ctx context.Context, tenantID string, f db.LogoutFilter) ([]db.Logout, error) {
	q := s.r.WithContext(ctx).Where("tenant_id = ?", tenantID)
	if f.User != "" {
		q = q.Where("name_id = ?", f.User)
	}
	if f.AppID != "" {
		// Both halves are index searches: logouts_tenant_trigger_ref, logout_legs_tenant_target.
		q = q.Where(`id IN (SELECT id FROM logouts WHERE tenant_id = ? AND trigger_ref = ? AND trigger_kind = ?
			UNION ALL SELECT logout_id FROM logout_legs WHERE tenant_id = ? AND target_id = ? AND target = ?)`,
			tenantID, f.AppID, "app", tenantID, f.AppID, "app")
	}
	if f.Outcome != "" {
		q = q.Where("outcome = ?", f.Outcome)
	}
	if !f.Since.IsZero() {
		q = q.Where("started_at >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		q = q.Where("started_at < ?", micros(f.Until))
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = db.DefaultLogoutLimit
	case limit > db.MaxLogoutLimit:
		limit = db.MaxLogoutLimit
	}
	return listLogouts(q.Limit(limit), "list logouts", "started_at DESC, id DESC")
}

// ListUnfinishedLogouts returns, across tenants, the running logouts with Deadline before the
// given time, earliest deadline first.
func (s *Store) ListUnfinishedLogouts(ctx context.Context, before time.Time) ([]db.Logout, error) {
	q := s.r.WithContext(ctx).Where("state = ? AND deadline < ?", db.LogoutRunning, micros(before))
	return listLogouts(q, "list unfinished logouts", "deadline, id")
}

// DeleteLogoutsBefore deletes, across tenants, the logouts with StartedAt before the given time
// and their legs, and returns how many logouts it deleted.
func (s *Store) DeleteLogoutsBefore(ctx context.Context, before time.Time) (int64, error) {
	us := micros(before)
	var n int64
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Exec(`DELETE FROM logout_legs WHERE (tenant_id, logout_id) IN
			(SELECT tenant_id, id FROM logouts WHERE started_at < ?)`, us).Error
		if err != nil {
			return err
		}
		res := tx.Where("started_at < ?", us).Delete(&logoutRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("delete logouts: %w", translate(err))
	}
	return n, nil
}
