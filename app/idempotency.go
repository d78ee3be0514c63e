package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// IdempotencyHeader names the client's key for a retriable POST.
const IdempotencyHeader = "Idempotency-Key"

// idempotencyStale is how long an unfinished key blocks retries; after it, a
// crashed attempt no longer pins the key.
const idempotencyStale = 2 * time.Minute

// Idempotent makes a POST safe to retry: the first request with a key runs
// and its response is stored; a retry with the same key and body gets that
// response replayed; the same key with another body is refused; a retry
// while the first still runs gets 409. Server errors release the key so the
// client can try again. Put it in a route's handler chain before the handler.
func (a *App) Idempotent() gin.HandlerFunc { return a.IdempotentBy(nil) }

// IdempotentBy is Idempotent with keys scoped also to who asks, as the module
// knows them (e.g. an anonymous buyer): one buyer's key can never replay
// another's response.
func (a *App) IdempotentBy(owner func(*gin.Context) string) gin.HandlerFunc {
	return func(c *gin.Context) {
		key := c.GetHeader(IdempotencyHeader)
		if key == "" {
			Fail(c, Invalid("idempotency_key_required", "send an Idempotency-Key header (a fresh UUID per operation) so retries are safe"))
			return
		}
		if len(key) > 255 || !printable(key) {
			Fail(c, Invalid("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable characters"))
			return
		}
		body, err := io.ReadAll(c.Request.Body)
		if err != nil {
			Fail(c, jsonProblem(err))
			return
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(append([]byte(c.Request.Method+" "+c.Request.URL.Path+"\n"), body...))
		scope := c.FullPath()
		if p := PrincipalOf(c); p.Kind != "" {
			scope += "|" + p.UserID.String()
		}
		if owner != nil {
			scope += "|" + owner(c)
		}
		ctx, t := c.Request.Context(), TenantOf(c)

		var claimed bool
		err = a.Tx(ctx, t, func(tx *gorm.DB) error {
			// Take over a key whose first attempt died without finishing.
			if err := tx.Exec(`DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND status IS NULL AND created_at < ?`,
				scope, key, time.Now().Add(-idempotencyStale)).Error; err != nil {
				return err
			}
			res := tx.Exec(`INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, scope, key, sum[:])
			claimed = res.RowsAffected == 1
			return res.Error
		})
		if err != nil {
			Fail(c, err)
			return
		}
		if !claimed {
			a.replay(c, scope, key, sum[:])
			return
		}
		rec := &recordingWriter{ResponseWriter: c.Writer}
		c.Writer = rec
		c.Next()
		a.settleKey(context.WithoutCancel(ctx), c, scope, key, rec)
	}
}

func (a *App) replay(c *gin.Context, scope, key string, sum []byte) {
	var rows []struct {
		RequestHash []byte  `gorm:"column:request_hash"`
		Status      *int    `gorm:"column:status"`
		ContentType *string `gorm:"column:content_type"`
		Response    []byte  `gorm:"column:response"`
	}
	err := a.Tx(c.Request.Context(), TenantOf(c), func(tx *gorm.DB) error {
		return tx.Raw(`SELECT request_hash, status, content_type, response FROM idempotency_keys WHERE scope = ? AND key = ?`, scope, key).Scan(&rows).Error
	})
	switch {
	case err != nil:
		Fail(c, err)
	case len(rows) == 0: // released by a failed first attempt a moment ago
		Fail(c, errKeyInProgress)
	case !bytes.Equal(rows[0].RequestHash, sum):
		Fail(c, ErrKeyReused)
	case rows[0].Status == nil:
		Fail(c, &Error{Kind: KindConflict, Code: "idempotency_in_progress", Detail: "the first request with this key is still running",
			RetryAfter: time.Second})
	default:
		ct := "application/json"
		if rows[0].ContentType != nil {
			ct = *rows[0].ContentType
		}
		c.Header("Idempotent-Replayed", "true")
		c.Data(*rows[0].Status, ct, rows[0].Response)
		c.Abort()
	}
}

func (a *App) settleKey(ctx context.Context, c *gin.Context, scope, key string, rec *recordingWriter) {
	status := rec.Status()
	err := a.Tx(ctx, TenantOf(c), func(tx *gorm.DB) error {
		if status >= 500 {
			return tx.Exec(`DELETE FROM idempotency_keys WHERE scope = ? AND key = ?`, scope, key).Error
		}
		return tx.Exec(`UPDATE idempotency_keys SET status = ?, content_type = ?, response = ?, completed_at = now() WHERE scope = ? AND key = ?`,
			status, rec.Header().Get("Content-Type"), rec.body.Bytes(), scope, key).Error
	})
	if err != nil {
		a.Log.Error("idempotency key not settled", "route", c.FullPath(), "err", err)
	}
}

// IdempotencyKey is a retriable request's key for work that records it in its
// own transaction (Once): cheaper than the Idempotent middleware (no extra
// transactions) and without its window, since the key commits or rolls back
// with the work itself.
type IdempotencyKey struct {
	scope, key string
	hash       []byte
}

// KeyFrom reads a request's Idempotency-Key. req is the decoded body (its
// fingerprint, with the route, guards against a key reused for another
// request); owner scopes the key beyond the principal (e.g. an anonymous
// buyer). Without a header it returns nil, or an error when required.
func KeyFrom(c *gin.Context, req any, owner string, required bool) (*IdempotencyKey, error) {
	key := c.GetHeader(IdempotencyHeader)
	if key == "" {
		if required {
			return nil, Invalid("idempotency_key_required", "send an Idempotency-Key header (a fresh UUID per operation) so retries are safe")
		}
		return nil, nil
	}
	if len(key) > 255 || !printable(key) {
		return nil, Invalid("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable characters")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte(c.Request.Method+" "+c.Request.URL.Path+"\n"), body...))
	scope := "tx|" + c.FullPath() + "|" + owner
	if p := PrincipalOf(c); p.Kind != "" {
		scope += "|" + p.UserID.String()
	}
	return &IdempotencyKey{scope: scope, key: key, hash: sum[:]}, nil
}

// Once runs op inside the caller's tenant transaction at most once per key:
// the first run stores out (as JSON) under the key in the same transaction;
// a retry, even one racing the first (it waits on the key's row), gets the
// stored out back and reports true. A nil key just runs op.
func Once(tx *gorm.DB, k *IdempotencyKey, out any, op func() error) (bool, error) {
	if k == nil {
		return false, op()
	}
	res := tx.Exec(`INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, k.scope, k.key, k.hash)
	if res.Error != nil {
		return false, res.Error
	}
	if res.RowsAffected == 0 {
		var rows []storedKey
		if err := tx.Raw(`SELECT scope, key, request_hash, status, response FROM idempotency_keys WHERE scope = ? AND key = ?`, k.scope, k.key).Scan(&rows).Error; err != nil {
			return false, err
		}
		if len(rows) == 0 {
			return false, errKeyInProgress
		}
		if err := rows[0].outcome(k); err != nil {
			return false, err
		}
		return true, json.Unmarshal(rows[0].Response, out)
	}
	if err := op(); err != nil {
		return false, err
	}
	body, err := json.Marshal(out)
	if err != nil {
		return false, err
	}
	return false, tx.Exec(`UPDATE idempotency_keys SET status = ?, content_type = 'application/json', response = ?, completed_at = now()
		WHERE scope = ? AND key = ?`, http.StatusCreated, body, k.scope, k.key).Error
}

// recordingWriter keeps a copy of the response for replay.
type recordingWriter struct {
	gin.ResponseWriter
	body bytes.Buffer
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) WriteString(s string) (int, error) {
	w.body.WriteString(s)
	return w.ResponseWriter.WriteString(s)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// storedKey is a key's row as a retry finds it.
type storedKey struct {
	Scope       string `gorm:"column:scope" json:"scope"`
	Key         string `gorm:"column:key" json:"key"`
	RequestHash []byte `gorm:"column:request_hash" json:"request_hash"` // base64 in LookupKeysSQL's JSON
	Status      *int   `gorm:"column:status" json:"status"`
	Response    []byte `gorm:"column:response" json:"response"`
}

var errKeyInProgress = &Error{Kind: KindConflict, Code: "idempotency_in_progress", Detail: "retry in a moment",
	RetryAfter: time.Second}

// outcome says whether k may replay this row: nil, or why not.
func (r storedKey) outcome(k *IdempotencyKey) error {
	switch {
	case r.Status == nil:
		return errKeyInProgress
	case !bytes.Equal(r.RequestHash, k.hash):
		return ErrKeyReused
	}
	return nil
}

// Slot identifies the key among all of a tenant's keys (two requests with
// equal slots are the same operation, or a key reused).
func (k *IdempotencyKey) Slot() string { return keySlot(k.scope, k.key) }

func keySlot(scope, key string) string { return scope + "\x00" + key }

// SameRequest reports whether two requests under one slot are the same one.
func (k *IdempotencyKey) SameRequest(o *IdempotencyKey) bool { return bytes.Equal(k.hash, o.hash) }

// ErrKeyReused answers a key sent again with a different request.
var ErrKeyReused = &Error{Kind: KindUnprocessable, Code: "idempotency_key_reused",
	Detail: "this Idempotency-Key was used with a different request"}

// KeyLookup is what LookupKeysSQL found under one key: nothing (the work is
// to be done), a stored response to replay, or why the key cannot be used.
type KeyLookup struct {
	Replay []byte
	Err    error
}

// LookupKeysSQL is Once's first half for work done in batches (many
// requests, one transaction), as a scalar subquery a batch puts in a read of
// its own: it reads what is stored under each key without claiming any. Its
// one placeholder takes KeySlots, its JSON result goes to ParseKeyLookup.
// The batch then does the work of the keys found empty and stores their
// responses with StoreKeysSQL in the same transaction.
const LookupKeysSQL = `SELECT json_agg(json_build_object('scope', k.scope, 'key', k.key,
		'request_hash', encode(k.request_hash, 'base64'), 'status', k.status, 'response', encode(k.response, 'base64')))
	FROM idempotency_keys k JOIN jsonb_to_recordset(?::jsonb) AS w(scope text, key text) ON k.scope = w.scope AND k.key = w.key`

// KeySlots encodes keys (nil ones skipped) for LookupKeysSQL.
func KeySlots(keys []*IdempotencyKey) (string, error) {
	type slot struct {
		Scope string `json:"scope"`
		Key   string `json:"key"`
	}
	want := []slot{}
	for _, k := range keys {
		if k != nil {
			want = append(want, slot{k.scope, k.key})
		}
	}
	raw, err := json.Marshal(want)
	return string(raw), err
}

// ParseKeyLookup reads LookupKeysSQL's result (nil when nothing was found)
// into one KeyLookup per key.
func ParseKeyLookup(keys []*IdempotencyKey, found []byte) ([]KeyLookup, error) {
	out := make([]KeyLookup, len(keys))
	var rows []storedKey
	if len(found) > 0 {
		if err := json.Unmarshal(found, &rows); err != nil {
			return nil, err
		}
	}
	byslot := make(map[string]storedKey, len(rows))
	for _, r := range rows {
		byslot[keySlot(r.Scope, r.Key)] = r
	}
	for i, k := range keys {
		if k == nil {
			continue
		}
		if r, ok := byslot[k.Slot()]; ok {
			if out[i].Err = r.outcome(k); out[i].Err == nil {
				out[i].Replay = r.Response
			}
		}
	}
	return out, nil
}

// StoreKeysSQL is Once's second half for batches: inside the batch's own
// writing statement (as a CTE), it records each key's 201 response from the
// records KeyRecords builds (its one placeholder). It returns a row per key
// stored; a key claimed meanwhile by a concurrent request (the insert waits
// for that claim to commit) returns none, and the batch must then roll back
// and run again, when LookupKeysSQL sees the other request's outcome.
const StoreKeysSQL = `INSERT INTO idempotency_keys (scope, key, request_hash, status, content_type, response, completed_at)
	SELECT r.scope, r.key, decode(r.hash, 'base64'), 201, 'application/json', convert_to(r.response, 'UTF8'), now()
	FROM jsonb_to_recordset(?::jsonb) AS r(scope text, key text, hash text, response text)
	ON CONFLICT DO NOTHING RETURNING 1`

// KeyRecords encodes keys with their responses for StoreKeysSQL.
func KeyRecords(keys []*IdempotencyKey, responses [][]byte) (string, error) {
	type row struct {
		Scope    string `json:"scope"`
		Key      string `json:"key"`
		Hash     []byte `json:"hash"` // base64 in JSON
		Response string `json:"response"`
	}
	rows := make([]row, 0, len(keys))
	for i, k := range keys {
		rows = append(rows, row{k.scope, k.key, k.hash, string(responses[i])})
	}
	raw, err := json.Marshal(rows)
	return string(raw), err
}
