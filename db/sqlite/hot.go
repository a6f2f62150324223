package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/sloworks/broker/db"
)

// The calls of a sign-in and of a logout (the replay cache, pending requests, sessions and
// participants, the logout log's rows) run as plain database/sql statements, prepared once at
// Open, without gorm's statement building, reflection and callbacks. Outside a Batch a write
// runs on the write connection and a read on the read pool, as gorm's calls do. Inside a Batch
// every one of them runs on the batch's transaction through Tx.StmtContext, which reuses the
// statement as the write connection prepared it: gorm instead prepares a statement it first
// meets inside a transaction anew in every later transaction (tens of microseconds of SQLite
// compiling per statement per batch).

// stmtID names a prepared statement.
type stmtID int

const (
	sMarkSeen stmtID = iota
	sSeen
	sCreatePending
	sTakePending
	sCreateSession
	sGetSession
	sGetSessionByCookie
	sEndSession
	sCountSession
	sAddParticipant
	sListParticipants
	sCreateLogout
	sCreateLeg
	sUpdateLogout
	sCountLogout
	sUpdateLeg
	sFinishLeg
	sFinishLegSent
	sCountLeg
	sGetLegByRequestID
	sSavepoint
	sRelease
	sRollbackTo
	nStmts
)

// The columns of the hot tables, in the order the scan functions read them.
const (
	sessionCols     = "id, tenant_id, connection_id, cookie_hash, name_id, name_id_format, name_qualifier, sp_name_qualifier, upstream_session_index, attributes, created_at, expires_at, ended_at"
	participantCols = "id, tenant_id, session_id, app_id, name_id, name_id_format, name_qualifier, sp_name_qualifier, session_index, created_at"
	pendingCols     = "id, tenant_id, connection_id, app_id, app_request_id, acs_url, relay_state, name_id_format, created_at, expires_at"
	logoutCols      = "id, tenant_id, trigger_kind, trigger_ref, name_id, session_ids, state, outcome, initiator, started_at, finished_at, deadline"
	legCols         = "id, tenant_id, logout_id, seq, target, target_id, target_name, channel, request_id, state, status, sub_status, latency_ms, error_class, diagnosis, sent, received, started_at, finished_at"

	// legResult is what FinishLeg sets; the condition is the leg's key and state pending.
	legResult = "UPDATE logout_legs SET state = ?, status = ?, sub_status = ?, latency_ms = ?, error_class = ?, diagnosis = ?, received = ?, finished_at = ?"
	legWhere  = " WHERE tenant_id = ? AND id = ? AND state = ? RETURNING " + legCols
)

// stmtDef is a statement's SQL; read marks a read, which runs on the read pool outside a Batch
// (and so is prepared there too).
type stmtDef struct {
	sql  string
	read bool
}

var stmtDefs = [nStmts]stmtDef{
	sMarkSeen: {sql: `INSERT INTO replay (tenant_id, message_id, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (tenant_id, message_id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE replay.expires_at <= ?`},
	sSeen: {sql: "SELECT count(*) FROM replay WHERE tenant_id = ? AND message_id = ? AND expires_at > ?", read: true},

	sCreatePending: {sql: insertInto("pending_requests", pendingCols)},
	sTakePending:   {sql: "DELETE FROM pending_requests WHERE tenant_id = ? AND id = ? RETURNING " + pendingCols},

	sCreateSession:      {sql: insertInto("sessions", sessionCols)},
	sGetSession:         {sql: "SELECT " + sessionCols + " FROM sessions WHERE tenant_id = ? AND id = ? LIMIT 1", read: true},
	sGetSessionByCookie: {sql: "SELECT " + sessionCols + " FROM sessions WHERE tenant_id = ? AND cookie_hash = ? LIMIT 1", read: true},
	sEndSession:         {sql: "UPDATE sessions SET ended_at = ? WHERE tenant_id = ? AND id = ? AND ended_at IS NULL"},
	sCountSession:       {sql: "SELECT count(*) FROM sessions WHERE tenant_id = ? AND id = ?"},

	sAddParticipant:   {sql: insertInto("participants", participantCols)},
	sListParticipants: {sql: "SELECT " + participantCols + " FROM participants WHERE tenant_id = ? AND session_id = ? ORDER BY created_at, id", read: true},

	sCreateLogout: {sql: insertInto("logouts", logoutCols)},
	sCreateLeg:    {sql: insertInto("logout_legs", legCols)},
	sUpdateLogout: {sql: `UPDATE logouts SET trigger_kind = ?, trigger_ref = ?, name_id = ?, session_ids = ?, state = ?,
		outcome = ?, initiator = ?, finished_at = ?, deadline = ? WHERE tenant_id = ? AND id = ? AND state = ?`},
	sCountLogout: {sql: "SELECT count(*) FROM logouts WHERE tenant_id = ? AND id = ?"},
	sUpdateLeg: {sql: `UPDATE logout_legs SET target = ?, target_id = ?, target_name = ?, channel = ?, request_id = ?,
		state = ?, status = ?, sub_status = ?, latency_ms = ?, error_class = ?, diagnosis = ?, sent = ?, received = ?,
		started_at = ?, finished_at = ? WHERE tenant_id = ? AND id = ? AND state = ?`},
	sFinishLeg:     {sql: legResult + legWhere},
	sFinishLegSent: {sql: legResult + ", sent = ?" + legWhere},
	sCountLeg:      {sql: "SELECT count(*) FROM logout_legs WHERE tenant_id = ? AND id = ?"},
	// request_id <> '' lets SQLite use the partial unique index on (tenant_id, request_id).
	sGetLegByRequestID: {sql: "SELECT " + legCols + " FROM logout_legs WHERE tenant_id = ? AND request_id = ? AND request_id <> '' LIMIT 1", read: true},

	// CreateLogout's rows inside a Batch: all of them or none, the batch going on either way.
	sSavepoint:  {sql: "SAVEPOINT create_logout"},
	sRelease:    {sql: "RELEASE create_logout"},
	sRollbackTo: {sql: "ROLLBACK TO create_logout"},
}

// insertInto is the INSERT of one row of cols (a comma-separated list) into table.
func insertInto(table, cols string) string {
	n := strings.Count(cols, ",") + 1
	return "INSERT INTO " + table + " (" + cols + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// stmts are the prepared statements of a Store, shared with the Stores its Batches hand out.
type stmts struct {
	wdb  *sql.DB
	w, r [nStmts]*sql.Stmt // every statement on the write connection; the reads on the read pool
	log  *slog.Logger      // SQL errors and slow statements, as gorm logs them; nil logs nothing
	// trace, when set (by tests, before any call), sees every statement run, with its arguments.
	trace func(query string, args []any)
}

// prepareStmts prepares every statement on the write connection and the reads on the read pool.
func prepareStmts(ctx context.Context, w, r *gorm.DB, l *slog.Logger) (*stmts, error) {
	wdb, err := w.DB()
	if err != nil {
		return nil, err
	}
	rdb, err := r.DB()
	if err != nil {
		return nil, err
	}
	p := &stmts{wdb: wdb, log: l}
	for id, d := range stmtDefs {
		if p.w[id], err = wdb.PrepareContext(ctx, d.sql); err == nil && d.read {
			p.r[id], err = rdb.PrepareContext(ctx, d.sql)
		}
		if err != nil {
			p.close()
			return nil, fmt.Errorf("prepare %q: %w", d.sql, err)
		}
	}
	return p, nil
}

func (p *stmts) close() error {
	var errs []error
	for _, set := range [][nStmts]*sql.Stmt{p.w, p.r} {
		for _, st := range set {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
	}
	return errors.Join(errs...)
}

// stmt returns statement id as s runs it: on s's Batch transaction, else on the write
// connection, or the read pool for a read.
func (s *Store) stmt(ctx context.Context, id stmtID) *sql.Stmt {
	if s.tx != nil {
		return s.tx.StmtContext(ctx, s.st.w[id])
	}
	if stmtDefs[id].read {
		return s.st.r[id]
	}
	return s.st.w[id]
}

// exec runs statement id and returns the number of rows it changed.
func (s *Store) exec(ctx context.Context, id stmtID, args ...any) (int64, error) {
	start := s.traced(id, args)
	n := int64(-1)
	res, err := s.stmt(ctx, id).ExecContext(ctx, args...)
	if err == nil {
		n, err = res.RowsAffected()
	}
	s.logged(ctx, id, start, n, err)
	return n, err
}

// queryRow runs statement id and scans its first row (sql.ErrNoRows when there is none) with
// scan, which is given the row's Scan.
func (s *Store) queryRow(ctx context.Context, id stmtID, scan func(func(...any) error) error, args ...any) error {
	start := s.traced(id, args)
	err := scan(s.stmt(ctx, id).QueryRowContext(ctx, args...).Scan)
	s.logged(ctx, id, start, -1, err)
	return err
}

// query runs statement id and calls each for every row, with the row's Scan.
func (s *Store) query(ctx context.Context, id stmtID, each func(func(...any) error) error, args ...any) error {
	start := s.traced(id, args)
	err := func() error {
		rows, err := s.stmt(ctx, id).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows.Scan); err != nil {
				return err
			}
		}
		return rows.Err()
	}()
	s.logged(ctx, id, start, -1, err)
	return err
}

// count runs statement id, a SELECT count(*).
func (s *Store) count(ctx context.Context, id stmtID, args ...any) (int64, error) {
	var n int64
	err := s.queryRow(ctx, id, func(scan func(...any) error) error { return scan(&n) }, args...)
	return n, err
}

// traced hands the statement to the trace hook, and returns the time it starts when there is a
// logger to tell of slow statements.
func (s *Store) traced(id stmtID, args []any) time.Time {
	if s.st.trace != nil {
		s.st.trace(stmtDefs[id].sql, args)
	}
	if s.st.log == nil {
		return time.Time{}
	}
	return time.Now()
}

// slowStatement is the duration over which a statement is logged (see WithLogger).
const slowStatement = 200 * time.Millisecond

// logged logs the statement if it failed or was slow, as gorm's logger does, without its
// arguments. No row is not a failure.
func (s *Store) logged(ctx context.Context, id stmtID, start time.Time, rows int64, err error) {
	if s.st.log == nil {
		return
	}
	elapsed := time.Since(start)
	level := slog.LevelWarn
	switch {
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		level = slog.LevelError
	case elapsed <= slowStatement:
		return
	}
	fields := []any{slog.String("duration", fmt.Sprintf("%.3fms", float64(elapsed.Nanoseconds())/1e6)),
		slog.String("sql", stmtDefs[id].sql)}
	if rows != -1 {
		fields = append(fields, slog.Int64("rows", rows))
	}
	if level == slog.LevelError {
		fields = append(fields, slog.String("error", err.Error()))
	}
	s.st.log.Log(ctx, level, "SQL executed", slog.Group("trace", fields...))
}

// atomically runs fn with a Store whose statements run in one transaction: s's Batch
// transaction under a savepoint (rolled back to on error, the batch going on), else a write
// transaction of its own.
func (s *Store) atomically(ctx context.Context, fn func(tx *Store) error) (err error) {
	if s.tx != nil {
		if _, err := s.exec(ctx, sSavepoint); err != nil {
			return err
		}
		if err := fn(s); err != nil {
			// ROLLBACK TO keeps the savepoint on the stack: RELEASE pops it.
			if _, rerr := s.exec(ctx, sRollbackTo); rerr != nil {
				return errors.Join(err, rerr)
			}
			_, rerr := s.exec(ctx, sRelease)
			return errors.Join(err, rerr)
		}
		_, err := s.exec(ctx, sRelease)
		return err
	}
	tx, err := s.st.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	t := *s
	t.tx = tx
	if err := fn(&t); err != nil {
		return err
	}
	return tx.Commit()
}

// sqlTx is the database/sql transaction under a gorm transaction.
func sqlTx(g *gorm.DB) (*sql.Tx, error) {
	pool := g.Statement.ConnPool
	if p, ok := pool.(*gorm.PreparedStmtTX); ok {
		pool = p.Tx
	}
	if tx, ok := pool.(*sql.Tx); ok {
		return tx, nil
	}
	return nil, fmt.Errorf("transaction on a %T, not a *sql.Tx", pool)
}

// nullMicros is micros for an optional time as a statement argument: nil is NULL.
func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

// nullInt is the *int64 of a nullable column; NULL is nil.
func nullInt(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

// Row scanners: each reads the columns of its table's list above.

func scanSession(scan func(...any) error) (db.Session, error) {
	var r sessionRow
	var ended sql.NullInt64
	err := scan(&r.ID, &r.TenantID, &r.ConnectionID, &r.CookieHash, &r.NameID, &r.NameIDFormat, &r.NameQualifier,
		&r.SPNameQualifier, &r.UpstreamSessionIndex, &r.Attributes, &r.CreatedAt, &r.ExpiresAt, &ended)
	if err != nil {
		return db.Session{}, err
	}
	r.EndedAt = nullInt(ended)
	return r.record(), nil
}

func scanParticipant(scan func(...any) error) (db.Participant, error) {
	var r participantRow
	err := scan(&r.ID, &r.TenantID, &r.SessionID, &r.AppID, &r.NameID, &r.NameIDFormat, &r.NameQualifier,
		&r.SPNameQualifier, &r.SessionIndex, &r.CreatedAt)
	if err != nil {
		return db.Participant{}, err
	}
	return r.record(), nil
}

func scanPending(scan func(...any) error) (pendingRow, error) {
	var r pendingRow
	err := scan(&r.ID, &r.TenantID, &r.ConnectionID, &r.AppID, &r.AppRequestID, &r.ACSURL, &r.RelayState,
		&r.NameIDFormat, &r.CreatedAt, &r.ExpiresAt)
	return r, err
}

func scanLeg(scan func(...any) error) (db.LogoutLeg, error) {
	var r legRow
	var finished sql.NullInt64
	err := scan(&r.ID, &r.TenantID, &r.LogoutID, &r.Seq, &r.Target, &r.TargetID, &r.TargetName, &r.Channel,
		&r.RequestID, &r.State, &r.Status, &r.SubStatus, &r.LatencyMS, &r.ErrorClass, &r.Diagnosis, &r.Sent,
		&r.Received, &r.StartedAt, &finished)
	if err != nil {
		return db.LogoutLeg{}, err
	}
	r.FinishedAt = nullInt(finished)
	return r.record(), nil
}
