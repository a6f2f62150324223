package sqlite

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/sloworks/broker/db"
)

// Signing keys.

type signingKeyRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	TenantID    string `gorm:"column:tenant_id"`
	Backend     string `gorm:"column:backend"`
	Version     int64  `gorm:"column:version"`
	Certificate []byte `gorm:"column:certificate"`
	CreatedAt   int64  `gorm:"column:created_at;autoCreateTime:false"`
	ActivatesAt int64  `gorm:"column:activates_at"`
	RetiresAt   *int64 `gorm:"column:retires_at"`
}

// TableName is the signing_keys table.
func (signingKeyRow) TableName() string { return "signing_keys" }

func (r *signingKeyRow) record() db.SigningKey {
	k := db.SigningKey{ID: r.ID, TenantID: r.TenantID, Backend: r.Backend, Version: int(r.Version),
		Certificate: unblob(r.Certificate), CreatedAt: fromMicros(r.CreatedAt), ActivatesAt: fromMicros(r.ActivatesAt)}
	if r.RetiresAt != nil {
		t := fromMicros(*r.RetiresAt)
		k.RetiresAt = &t
	}
	return k
}

// AddSigningKey stores k and retires the tenant's other unretired keys at *retire, in one
// transaction (see db.SigningKeys).
func (s *Store) AddSigningKey(ctx context.Context, k *db.SigningKey, retire *time.Time) error {
	n := *k
	s.stamp(&n.ID, &n.CreatedAt)
	row := &signingKeyRow{ID: n.ID, TenantID: n.TenantID, Backend: n.Backend, Version: int64(n.Version),
		Certificate: blob(n.Certificate), CreatedAt: micros(n.CreatedAt), ActivatesAt: micros(n.ActivatesAt)}
	if n.RetiresAt != nil {
		r := micros(*n.RetiresAt)
		row.RetiresAt = &r
	}
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var pending int64
		if err := tx.Model(&signingKeyRow{}).Where("tenant_id = ? AND activates_at > ?", n.TenantID, micros(n.CreatedAt)).Count(&pending).Error; err != nil {
			return translate(err)
		}
		if pending > 0 {
			return fmt.Errorf("a key of the tenant activates later (a rotation is pending): %w", db.ErrConflict)
		}
		if err := tx.Create(row).Error; err != nil {
			return translate(err)
		}
		if retire == nil {
			return nil
		}
		return translate(tx.Model(&signingKeyRow{}).Where("tenant_id = ? AND id <> ? AND retires_at IS NULL", n.TenantID, n.ID).
			Update("retires_at", micros(*retire)).Error)
	})
	if err != nil {
		return fmt.Errorf("add signing key: %w", err)
	}
	k.ID, k.CreatedAt = n.ID, n.CreatedAt
	return nil
}

// ListSigningKeys returns the tenant's keys ordered by ActivatesAt, CreatedAt, ID.
func (s *Store) ListSigningKeys(ctx context.Context, tenantID string) ([]db.SigningKey, error) {
	var rows []signingKeyRow
	if err := s.r.WithContext(ctx).Where("tenant_id = ?", tenantID).Order("activates_at, created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list signing keys: %w", translate(err))
	}
	out := make([]db.SigningKey, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].record())
	}
	return out, nil
}

// DeleteSigningKeys deletes the tenant's keys.
func (s *Store) DeleteSigningKeys(ctx context.Context, tenantID string) (int64, error) {
	res := s.w.WithContext(ctx).Where("tenant_id = ?", tenantID).Delete(&signingKeyRow{})
	if res.Error != nil {
		return 0, fmt.Errorf("delete signing keys: %w", translate(res.Error))
	}
	return res.RowsAffected, nil
}
