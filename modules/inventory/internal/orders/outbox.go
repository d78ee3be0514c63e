package orders

import (
	"context"
	"errors"
	"marquee/jobs"
	"marquee/tenants"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"
)

// The outbox: mail written in the transaction of what it tells, sent by a
// task. Sending here is recording it as sent and logging it; a real mail
// transport plugs in at sendMail.

// EnqueueOutbox asks for the outbox to be drained soon.
func (s *Service) EnqueueOutbox(ctx context.Context, t tenants.Tenant) {
	_, err := s.d.App.Jobs.Enqueue(context.WithoutCancel(ctx), t, TaskOutbox, struct{}{},
		asynq.TaskID("outbox:"+t.Slug+":"+time.Now().UTC().Truncate(10*time.Second).Format(time.RFC3339)), asynq.Queue(jobs.QueueDefault))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.d.App.Log.Warn("outbox drain not queued; the periodic drain sends it", "tenant", t.Slug, "err", err)
	}
}

// DrainOutbox sends up to limit unsent mails, each marked sent in the
// transaction that sends it (SKIP LOCKED: drains running at once split the
// work). It returns how many it sent.
func (s *Service) DrainOutbox(ctx context.Context, t tenants.Tenant, limit int) (int, error) {
	n := 0
	for n < limit {
		var sent bool
		err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
			var rows []struct {
				ID      uuid.UUID  `gorm:"column:id"`
				OrderID *uuid.UUID `gorm:"column:order_id"`
				Subject string     `gorm:"column:subject"`
			}
			if err := tx.Raw(`SELECT id, order_id, subject FROM inv_email_outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&rows).Error; err != nil || len(rows) == 0 {
				return err
			}
			// No address or body in the log: they are the buyer's.
			s.d.App.Log.Info("mail sent", "tenant", t.Slug, "mail", rows[0].ID, "order", rows[0].OrderID, "subject", rows[0].Subject)
			sent = true
			return tx.Exec(`UPDATE inv_email_outbox SET sent_at = now() WHERE id = ?`, rows[0].ID).Error
		})
		if err != nil || !sent {
			return n, err
		}
		n++
	}
	return n, nil
}
