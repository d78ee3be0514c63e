package ops

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

// Photo is a picture attached to an incident. Its bytes live in the core's
// object storage and are served only through the incident's permissions.
type Photo struct {
	ID          uuid.UUID `json:"id"`
	IncidentID  uuid.UUID `json:"incident_id"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	URL         string    `json:"url"`
	CreatedAt   time.Time `json:"created_at"`
}

// maxPhotos bounds the photos of one incident.
const maxPhotos = 10

// photoTypes are the images accepted, by the type their bytes show.
var photoTypes = map[string]string{"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}

func photoURL(event, incident, photo uuid.UUID) string {
	return "/api/v1/events/" + event.String() + "/incidents/" + incident.String() + "/photos/" + photo.String()
}

// AddPhoto stores a photo of an incident. The declared type must be one
// accepted and match what the bytes are (a script named image/png is
// refused); the size is bounded by the core's body limit. The object is
// written first under a fresh key and recorded after: a failed record
// leaves an orphan object, never a record without its bytes.
func (s *Service) AddPhoto(ctx context.Context, t tenants.Tenant, event, incident uuid.UUID, actor *uuid.UUID, declared string, data []byte) (Photo, error) {
	declared = strings.ToLower(strings.TrimSpace(strings.Split(declared, ";")[0]))
	ext, ok := photoTypes[declared]
	if !ok {
		return Photo{}, app.InvalidField("invalid_incident_photo", "Content-Type", "a photo is image/jpeg, image/png or image/webp")
	}
	if len(data) == 0 {
		return Photo{}, app.InvalidField("invalid_incident_photo", "body", "the photo is empty")
	}
	if sniffed := http.DetectContentType(data); sniffed != declared {
		return Photo{}, app.InvalidField("invalid_incident_photo", "body", "the bytes are %s, not %s", sniffed, declared)
	}
	// The incident must exist, be this event's and still open to additions.
	var status []string
	if err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT status FROM ops_incidents WHERE event_id = ? AND id = ?`, event, incident).Scan(&status).Error
	}); err != nil {
		return Photo{}, err
	}
	if len(status) == 0 {
		return Photo{}, app.NotFound("incident")
	}
	if status[0] == "resolved" {
		return Photo{}, app.Conflict("incident_resolved", "the incident is resolved; its timeline is closed")
	}
	id := newID()
	key := "ops/incidents/" + incident.String() + "/" + id.String() + "." + ext
	info, err := s.app.Objects(t).Put(ctx, key, declared, bytes.NewReader(data))
	if err != nil {
		return Photo{}, err
	}
	now := s.app.Now().UTC().Truncate(time.Microsecond)
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		// The incident's row, locked: its photos are counted, and the
		// resolution cannot slip in between.
		var st []string
		if err := tx.Raw(`SELECT status FROM ops_incidents WHERE id = ? FOR UPDATE`, incident).Scan(&st).Error; err != nil {
			return err
		}
		if len(st) == 0 || st[0] == "resolved" {
			return app.Conflict("incident_resolved", "the incident is resolved; its timeline is closed")
		}
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM ops_incident_photos WHERE incident_id = ?`, incident).Scan(&n).Error; err != nil {
			return err
		}
		if n >= maxPhotos {
			return app.Conflict("incident_photos_full", "an incident holds at most 10 photos")
		}
		if err := tx.Exec(`INSERT INTO ops_incident_photos (id, incident_id, object_key, content_type, size_bytes, sha256, uploaded_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, incident, key, declared, info.Size, info.SHA256, actor, now).Error; err != nil {
			return err
		}
		return appendTimeline(tx, incident, now, actor, "photo", id.String())
	})
	if err != nil {
		_ = s.app.Objects(t).Delete(context.WithoutCancel(ctx), key)
		return Photo{}, err
	}
	p := Photo{ID: id, IncidentID: incident, ContentType: declared, Size: info.Size, URL: photoURL(event, incident, id), CreatedAt: now}
	if inc, err := s.Incident(ctx, t, event, incident); err == nil {
		s.publish(ctx, t, event, "incident", redact(withoutTimeline(inc), false))
	}
	return p, nil
}

// photosOf reads the photos of incidents, by incident.
func photosOf(tx *gorm.DB, event uuid.UUID, incidents []uuid.UUID) (map[uuid.UUID][]Photo, error) {
	out := map[uuid.UUID][]Photo{}
	if len(incidents) == 0 {
		return out, nil
	}
	var rows []struct {
		ID          uuid.UUID
		IncidentID  uuid.UUID
		ContentType string
		SizeBytes   int64
		CreatedAt   time.Time
	}
	if err := tx.Raw(`SELECT id, incident_id, content_type, size_bytes, created_at FROM ops_incident_photos WHERE incident_id IN ? ORDER BY created_at, id`,
		incidents).Scan(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.IncidentID] = append(out[r.IncidentID], Photo{ID: r.ID, IncidentID: r.IncidentID, ContentType: r.ContentType, Size: r.SizeBytes,
			URL: photoURL(event, r.IncidentID, r.ID), CreatedAt: r.CreatedAt})
	}
	return out, nil
}

// OpenPhoto opens a photo's bytes; the caller closes them.
func (s *Service) OpenPhoto(ctx context.Context, t tenants.Tenant, event, incident, photo uuid.UUID) (io.ReadCloser, Photo, bool, error) {
	var rows []struct {
		ObjectKey    string
		ContentType  string
		SizeBytes    int64
		Confidential bool
	}
	if err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT p.object_key, p.content_type, p.size_bytes, i.confidential FROM ops_incident_photos p JOIN ops_incidents i ON i.id = p.incident_id
			WHERE i.event_id = ? AND i.id = ? AND p.id = ?`, event, incident, photo).Scan(&rows).Error
	}); err != nil {
		return nil, Photo{}, false, err
	}
	if len(rows) == 0 {
		return nil, Photo{}, false, app.NotFound("photo")
	}
	r := rows[0]
	body, _, err := s.app.Objects(t).Get(ctx, r.ObjectKey)
	if errors.Is(err, app.ErrObjectNotFound) {
		return nil, Photo{}, false, app.NotFound("photo")
	}
	if err != nil {
		return nil, Photo{}, false, err
	}
	return body, Photo{ID: photo, IncidentID: incident, ContentType: r.ContentType, Size: r.SizeBytes}, r.Confidential, nil
}

// ---- handlers

func (m *Module) uploadPhoto(c *gin.Context) {
	ev, id, err := m.incident(c, ObjIncidents)
	if err != nil {
		app.Fail(c, err)
		return
	}
	// The core's body limit bounds it (413 beyond).
	data, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			app.Fail(c, app.Errorf(app.KindPayloadTooLarge, "payload_too_large", "a photo is at most %d bytes", tooBig.Limit))
			return
		}
		app.Fail(c, err)
		return
	}
	p, err := m.svc.AddPhoto(c.Request.Context(), app.TenantOf(c), ev.ID, id, actor(c), c.GetHeader("Content-Type"), data)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, p)
}

func (m *Module) getPhoto(c *gin.Context) {
	ev, err := m.event(c, ObjIncidents, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	id, err := app.PathUUID(c, "incidentId", "incident")
	if err != nil {
		app.Fail(c, err)
		return
	}
	photo, err := app.PathUUID(c, "photoId", "photo")
	if err != nil {
		app.Fail(c, err)
		return
	}
	body, p, confidential, err := m.svc.OpenPhoto(c.Request.Context(), app.TenantOf(c), ev.ID, id, photo)
	if err != nil {
		app.Fail(c, err)
		return
	}
	defer body.Close()
	// A confidential incident's photos are for its handlers only.
	if confidential && !m.app.CanAtVenue(c, ev.VenueID, ObjHandling, policies.Read) {
		app.Fail(c, app.Forbidden("forbidden", "the incident is confidential"))
		return
	}
	c.Header("Cache-Control", "private, max-age=300")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Content-Disposition", "inline")
	c.DataFromReader(http.StatusOK, p.Size, p.ContentType, body, nil)
}
