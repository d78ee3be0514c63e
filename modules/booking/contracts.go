package booking

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/modules/booking/internal/contract"
	"marquee/tenants"
)

// Contract statuses: signing (waiting for every party), sealing (all
// signed; the seal job writes the signed copy, retried and visible),
// sealed (the signed copy exists; nothing signs or seals again).
const (
	ContractSigning = "signing"
	ContractSealing = "sealing"
	ContractSealed  = "sealed"
)

// TaskContractSeal writes a contract's signed copy once every party signed
// (id booking-contract-seal:<tenant>:<contract>): retried with backoff, its
// attempts and last error on the contract, never a silent "pending".
const TaskContractSeal = "booking:contract-seal"

// ContractView is a contract as the parties see it.
type ContractView struct {
	ID           uuid.UUID        `json:"id"`
	BookingID    uuid.UUID        `json:"booking_id"`
	TermsVersion int              `json:"terms_version"`
	SHA256       string           `json:"sha256"`
	SizeBytes    int64            `json:"size_bytes"`
	Status       string           `json:"status"`
	Provider     string           `json:"provider"`
	EnvelopeID   *string          `json:"envelope_id"`
	SealAttempts int              `json:"seal_attempts"`
	SealError    string           `json:"seal_error"`
	SealedSHA256 *string          `json:"sealed_sha256"`
	SealedAt     *time.Time       `json:"sealed_at"`
	CreatedAt    time.Time        `json:"created_at"`
	Signatures   []SignatureEntry `json:"signatures"`
	// Unsigned lists the parties still to sign.
	Unsigned []Party `json:"unsigned"`
}

// SignatureEntry is one party's signature.
type SignatureEntry struct {
	Party          Party     `gorm:"column:party" json:"party"`
	Name           string    `gorm:"column:name" json:"name"`
	SignedAt       time.Time `gorm:"column:signed_at" json:"signed_at"`
	IP             string    `gorm:"column:ip" json:"ip"`
	DocumentSHA256 string    `gorm:"column:document_sha256" json:"document_sha256"`
	Via            string    `gorm:"column:via" json:"via"`
}

type contractRow struct {
	ID           uuid.UUID  `gorm:"column:id"`
	BookingID    uuid.UUID  `gorm:"column:booking_id"`
	TermsN       int        `gorm:"column:terms_n"`
	ObjectKey    string     `gorm:"column:object_key"`
	SHA256       string     `gorm:"column:sha256"`
	SizeBytes    int64      `gorm:"column:size_bytes"`
	Status       string     `gorm:"column:status"`
	Provider     string     `gorm:"column:provider"`
	EnvelopeID   *string    `gorm:"column:envelope_id"`
	SealAttempts int        `gorm:"column:seal_attempts"`
	SealError    string     `gorm:"column:seal_error"`
	SealedKey    *string    `gorm:"column:sealed_key"`
	SealedSHA256 *string    `gorm:"column:sealed_sha256"`
	SealedAt     *time.Time `gorm:"column:sealed_at"`
	Document     []byte     `gorm:"column:document"`
	CreatedAt    time.Time  `gorm:"column:created_at"`
}

var parties = []Party{Promoter, Artist}

func findContract(tx *gorm.DB, bookingID uuid.UUID, lock bool) (contractRow, error) {
	q := `SELECT * FROM bkg_contracts WHERE booking_id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []contractRow
	if err := tx.Raw(q, bookingID).Scan(&rows).Error; err != nil {
		return contractRow{}, err
	}
	if len(rows) == 0 {
		return contractRow{}, app.NotFound("contract")
	}
	return rows[0], nil
}

func listSignatures(tx *gorm.DB, contractID uuid.UUID) ([]SignatureEntry, error) {
	out := []SignatureEntry{}
	err := tx.Raw(`SELECT party, name, signed_at, ip, document_sha256, via FROM bkg_signatures
		WHERE contract_id = ? ORDER BY signed_at, party`, contractID).Scan(&out).Error
	for i := range out {
		out[i].SignedAt = out[i].SignedAt.UTC()
	}
	return out, err
}

func contractView(tx *gorm.DB, c contractRow) (ContractView, error) {
	v := ContractView{ID: c.ID, BookingID: c.BookingID, TermsVersion: c.TermsN, SHA256: c.SHA256, SizeBytes: c.SizeBytes,
		Status: c.Status, Provider: c.Provider, EnvelopeID: c.EnvelopeID, SealAttempts: c.SealAttempts, SealError: c.SealError,
		SealedSHA256: c.SealedSHA256, CreatedAt: c.CreatedAt.UTC(), Unsigned: []Party{}}
	if c.SealedAt != nil {
		at := c.SealedAt.UTC()
		v.SealedAt = &at
	}
	var err error
	if v.Signatures, err = listSignatures(tx, c.ID); err != nil {
		return ContractView{}, err
	}
	for _, p := range parties {
		signed := false
		for _, s := range v.Signatures {
			signed = signed || s.Party == p
		}
		if !signed {
			v.Unsigned = append(v.Unsigned, p)
		}
	}
	return v, nil
}

// ---- the chain's template

// ContractTemplate is the chain's clauses (the default ones until it edits them).
type ContractTemplate struct {
	Clauses   []contract.Clause `json:"clauses"`
	IsDefault bool              `json:"is_default"`
	UpdatedBy string            `json:"updated_by"`
	UpdatedAt *time.Time        `json:"updated_at"`
}

func readTemplate(tx *gorm.DB) (ContractTemplate, error) {
	var rows []struct {
		Clauses   []byte    `gorm:"column:clauses"`
		UpdatedBy string    `gorm:"column:updated_by"`
		UpdatedAt time.Time `gorm:"column:updated_at"`
	}
	if err := tx.Raw(`SELECT clauses, updated_by, updated_at FROM bkg_contract_template WHERE id = 1`).Scan(&rows).Error; err != nil {
		return ContractTemplate{}, err
	}
	if len(rows) == 0 {
		return ContractTemplate{Clauses: contract.DefaultClauses(), IsDefault: true}, nil
	}
	t := ContractTemplate{UpdatedBy: rows[0].UpdatedBy}
	at := rows[0].UpdatedAt.UTC()
	t.UpdatedAt = &at
	return t, json.Unmarshal(rows[0].Clauses, &t.Clauses)
}

// Template reads the chain's contract template.
func (s *Service) Template(ctx context.Context, t tenants.Tenant) (ContractTemplate, error) {
	var out ContractTemplate
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = readTemplate(tx)
		return err
	})
	return out, err
}

// SaveTemplate replaces the chain's clauses. Contracts already rendered keep
// the clauses they were rendered with.
func (s *Service) SaveTemplate(ctx context.Context, t tenants.Tenant, clauses []contract.Clause, actor Actor) (ContractTemplate, error) {
	if len(clauses) == 0 || len(clauses) > contract.MaxClauses {
		return ContractTemplate{}, app.InvalidField("invalid_contract_template", "clauses", "1 to %d clauses", contract.MaxClauses)
	}
	for i := range clauses {
		var err error
		f := fmt.Sprintf("clauses[%d]", i)
		if clauses[i].Title, err = cleanText(f+".title", clauses[i].Title, contract.MaxClauseTitle, true); err != nil {
			return ContractTemplate{}, err
		}
		if clauses[i].Text, err = cleanText(f+".text", clauses[i].Text, contract.MaxClauseText, true); err != nil {
			return ContractTemplate{}, err
		}
	}
	b, _ := json.Marshal(clauses)
	var out ContractTemplate
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO bkg_contract_template (id, clauses, updated_by, updated_at) VALUES (1, ?, ?, now())
			ON CONFLICT (id) DO UPDATE SET clauses = excluded.clauses, updated_by = excluded.updated_by, updated_at = now()`,
			string(b), actor.author()).Error; err != nil {
			return err
		}
		var err error
		out, err = readTemplate(tx)
		return err
	})
	return out, err
}

// ---- rendering at acceptance

func contractKey(bookingID uuid.UUID, n int) string {
	return fmt.Sprintf("booking/contracts/%s/terms-v%d.pdf", bookingID, n)
}

func sealedKey(bookingID uuid.UUID, n int) string {
	return fmt.Sprintf("booking/contracts/%s/terms-v%d-signed.pdf", bookingID, n)
}

// draftContract renders the accepted version into the contract PDF, stores
// it and records its digest, inside the acceptance's transaction. The key is
// the booking's and version's, and the bytes depend only on the inputs, so
// a retried or rolled-back acceptance rewrites the same object.
func (s *Service) draftContract(ctx context.Context, tx *gorm.DB, t tenants.Tenant, b Booking, date string, acceptedAt time.Time) error {
	v, err := findVersion(tx, b.ID, *b.AcceptedN)
	if err != nil {
		return err
	}
	tpl, err := readTemplate(tx)
	if err != nil {
		return err
	}
	doc := contract.Document{ContractID: b.ID.String()[:8], Chain: t.Name, Artist: b.ArtistName, Agent: b.AgentName,
		Show: b.Title, Date: date, TermsVersion: v.N, AcceptedAt: acceptedAt.UTC().Truncate(time.Second),
		Terms: v.Terms, Clauses: tpl.Clauses}
	if doc.Chain == "" {
		doc.Chain = t.Slug
	}
	pdf, err := contract.Render(doc)
	if err != nil {
		return err
	}
	key := contractKey(b.ID, v.N)
	info, err := s.app.Objects(t).Put(ctx, key, "application/pdf", bytes.NewReader(pdf))
	if err != nil {
		return err
	}
	docJSON, _ := json.Marshal(doc)
	return tx.Exec(`INSERT INTO bkg_contracts (id, booking_id, terms_n, object_key, sha256, size_bytes, document)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, uuid.Must(uuid.NewV7()), b.ID, v.N, key, info.SHA256, info.Size, string(docJSON)).Error
}

// showDate is the date a contract names: the hold's or the event's start,
// or "a mutually agreeable date". It is read before the acceptance's
// transaction (the calendar opens its own; nesting would hold two
// connections per acceptance).
func (s *Service) showDate(ctx context.Context, t tenants.Tenant, id uuid.UUID) string {
	const mad = "a mutually agreeable date"
	var b Booking
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		b, err = findBooking(tx, id, scope{}, false)
		return err
	})
	if err != nil {
		return mad
	}
	format := func(at time.Time) string { return at.UTC().Format("Monday 2 January 2006, 15:04 UTC") }
	if b.HoldID != nil {
		if h, err := s.app.Holds().Hold(ctx, t, *b.HoldID); err == nil {
			return format(h.StartsAt)
		}
	} else if b.EventID != nil && s.app.Events() != nil {
		if e, err := s.app.Events().Event(ctx, t, *b.EventID); err == nil {
			return format(e.StartsAt)
		}
	}
	return mad
}

// Contract reads a booking's contract (an agent's scope hides the others').
func (s *Service) Contract(ctx context.Context, t tenants.Tenant, bookingID uuid.UUID, actor Actor) (ContractView, error) {
	var out ContractView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := findBooking(tx, bookingID, scope{actor.AgentID}, false); err != nil {
			return err
		}
		c, err := findContract(tx, bookingID, false)
		if err != nil {
			return err
		}
		out, err = contractView(tx, c)
		return err
	})
	return out, err
}

// ContractPDF opens the contract's PDF (sealed: the signed copy), checking
// its digest against the one recorded: a changed file is an error, never
// served as the contract.
func (s *Service) ContractPDF(ctx context.Context, t tenants.Tenant, bookingID uuid.UUID, sealed bool, actor Actor) ([]byte, string, error) {
	var c contractRow
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := findBooking(tx, bookingID, scope{actor.AgentID}, false); err != nil {
			return err
		}
		var err error
		c, err = findContract(tx, bookingID, false)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	key, want := c.ObjectKey, c.SHA256
	if sealed {
		if c.Status != ContractSealed {
			return nil, "", app.Conflict("contract_not_sealed", "the contract is %s: its signed copy does not exist yet", c.Status)
		}
		key, want = *c.SealedKey, *c.SealedSHA256
	}
	b, err := s.readObject(ctx, t, key, want)
	return b, want, err
}

func (s *Service) readObject(ctx context.Context, t tenants.Tenant, key, wantSHA256 string) ([]byte, error) {
	rc, _, err := s.app.Objects(t).Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("contract document %s: %w", key, err)
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != wantSHA256 {
		return nil, fmt.Errorf("contract document %s changed: its SHA-256 is %x, the contract's %s", key, got, wantSHA256)
	}
	return b, nil
}

// ---- signing

// SignInput is a click-to-sign: the signer's name and the digest of the
// document they were shown.
type SignInput struct {
	Name           string
	DocumentSHA256 string
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Sign records the actor's party's signature over the contract. Refused
// when the digest is not the contract's (the signer saw another document),
// when the party already signed, or once the contract is sealing or sealed.
// The last signature moves the contract to sealing and queues the seal.
func (s *Service) Sign(ctx context.Context, t tenants.Tenant, bookingID uuid.UUID, in SignInput, actor Actor) (ContractView, error) {
	name, err := cleanText("name", in.Name, 200, true)
	if err != nil {
		return ContractView{}, err
	}
	digest := strings.ToLower(strings.TrimSpace(in.DocumentSHA256))
	if !sha256Hex.MatchString(digest) {
		return ContractView{}, app.InvalidField("invalid_request", "document_sha256", "the SHA-256 of the contract you read, 64 hex digits")
	}
	var out ContractView
	var seal bool
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		seal = false
		b, err := findBooking(tx, bookingID, scope{actor.AgentID}, false)
		if err != nil {
			return err
		}
		c, err := findContract(tx, bookingID, true)
		if err != nil {
			return err
		}
		if c.Provider != "click" {
			return app.Conflict("contract_signed_by_provider", "this contract is signed through the e-signature provider (envelope %s)", deref(c.EnvelopeID))
		}
		if c.Status != ContractSigning {
			return app.Conflict("contract_signing_closed", "every party signed already; the contract is %s", c.Status)
		}
		if digest != c.SHA256 {
			return app.Conflict("contract_document_changed", "you signed a document whose SHA-256 is not the contract's; reload the contract and sign again").
				With("sha256", c.SHA256)
		}
		if seal, err = addSignature(tx, c, actor.Party, name, s.app.Now(), actor.IP, digest, "click-to-sign", actor.author()); err != nil {
			return err
		}
		if err := addHistory(tx, bookingID, actor, "sign", b.State, b.State, &c.TermsN, "signed as "+name); err != nil {
			return err
		}
		c, err = findContract(tx, bookingID, false)
		if err != nil {
			return err
		}
		out, err = contractView(tx, c)
		return err
	})
	if err == nil && seal {
		s.queueSeal(ctx, t, out.ID, bookingID)
	}
	return out, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// addSignature inserts a party's signature on a locked contract; when it is
// the last one, the contract moves to sealing (sealNow true). A party that
// signed already is refused.
func addSignature(tx *gorm.DB, c contractRow, p Party, name string, at time.Time, ip, digest, via, actor string) (bool, error) {
	q := tx.Exec(`INSERT INTO bkg_signatures (contract_id, party, name, signed_at, ip, document_sha256, via, actor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, c.ID, string(p), name, at.UTC(), ip, digest, via, actor)
	if q.Error != nil {
		return false, q.Error
	}
	if q.RowsAffected == 0 {
		return false, app.Conflict("contract_already_signed", "the %s signed this contract already", p)
	}
	var n int64
	if err := tx.Raw(`SELECT count(*) FROM bkg_signatures WHERE contract_id = ?`, c.ID).Scan(&n).Error; err != nil {
		return false, err
	}
	if int(n) < len(parties) {
		return false, nil
	}
	return true, tx.Exec(`UPDATE bkg_contracts SET status = 'sealing' WHERE id = ? AND status = 'signing'`, c.ID).Error
}

type sealTask struct {
	ContractID uuid.UUID `json:"contract_id"`
	BookingID  uuid.UUID `json:"booking_id"`
}

// queueSeal enqueues the seal. A lost enqueue leaves the contract in
// sealing, shown with its attempts; "seal now" (or the next signature
// webhook) queues it again.
func (s *Service) queueSeal(ctx context.Context, t tenants.Tenant, contractID, bookingID uuid.UUID) {
	_, err := s.app.Jobs.Enqueue(ctx, t, TaskContractSeal, sealTask{ContractID: contractID, BookingID: bookingID},
		asynq.Queue(jobs.QueueDefault), asynq.MaxRetry(20), asynq.TaskID(fmt.Sprintf("booking-contract-seal:%s:%s", t.Slug, contractID)))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.app.Log.Warn("contract seal not queued", "tenant", t.Slug, "contract", contractID, "err", err)
	}
}

// errAlreadySealed refuses a second seal: a signed copy is written once.
func errAlreadySealed() error {
	return app.Conflict("contract_already_sealed", "the contract is sealed already; its signed copy is never written twice")
}

// Seal writes the signed copy: the contract as rendered, plus the
// certificate page of every signature, stored with its digest; once.
// Sealing a sealed contract is refused (contract_already_sealed); one that
// is still waiting for signatures is refused (contract_not_signed). A
// failure is recorded on the contract (attempts, error) and returned, so the
// task is retried and staff see why.
func (s *Service) Seal(ctx context.Context, t tenants.Tenant, bookingID uuid.UUID, actor Actor) (ContractView, error) {
	var out ContractView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		c, err := findContract(tx, bookingID, true)
		if err != nil {
			return err
		}
		switch c.Status {
		case ContractSealed:
			return errAlreadySealed()
		case ContractSigning:
			return app.Conflict("contract_not_signed", "the contract waits for signatures; it is sealed once every party signed")
		}
		key, sum, err := s.sealDocument(ctx, tx, t, c)
		if err != nil {
			return &sealFailure{err}
		}
		if err := tx.Exec(`UPDATE bkg_contracts SET status = 'sealed', sealed_key = ?, sealed_sha256 = ?, sealed_at = ?,
			seal_attempts = seal_attempts + 1, seal_error = '' WHERE id = ? AND status = 'sealing'`, key, sum, s.app.Now().UTC(), c.ID).Error; err != nil {
			return err
		}
		b, err := findBooking(tx, bookingID, scope{}, false)
		if err != nil {
			return err
		}
		if err := addHistory(tx, bookingID, actor, "seal", b.State, b.State, &c.TermsN, "signed copy "+sum); err != nil {
			return err
		}
		c, err = findContract(tx, bookingID, false)
		if err != nil {
			return err
		}
		out, err = contractView(tx, c)
		return err
	})
	var f *sealFailure
	if errors.As(err, &f) {
		s.recordSealFailure(ctx, t, bookingID, f.err)
		return ContractView{}, app.Unavailable("contract_seal_failed", time.Minute, "sealing failed and is retried: %v", f.err)
	}
	return out, err
}

type sealFailure struct{ err error }

func (f *sealFailure) Error() string { return f.err.Error() }

func (s *Service) recordSealFailure(ctx context.Context, t tenants.Tenant, bookingID uuid.UUID, cause error) {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE bkg_contracts SET seal_attempts = seal_attempts + 1, seal_error = ? WHERE booking_id = ? AND status = 'sealing'`,
			msg, bookingID).Error
	})
	if err != nil {
		s.app.Log.Error("contract seal failure not recorded", "tenant", t.Slug, "booking", bookingID, "err", err)
	}
	s.app.Log.Warn("contract seal failed; retried", "tenant", t.Slug, "booking", bookingID, "err", cause)
}

// sealDocument checks the stored contract is the one signed (its digest),
// renders the signed copy and stores it.
func (s *Service) sealDocument(ctx context.Context, tx *gorm.DB, t tenants.Tenant, c contractRow) (string, string, error) {
	if _, err := s.readObject(ctx, t, c.ObjectKey, c.SHA256); err != nil {
		return "", "", err
	}
	var doc contract.Document
	if err := json.Unmarshal(c.Document, &doc); err != nil {
		return "", "", fmt.Errorf("contract document: %w", err)
	}
	sigs, err := listSignatures(tx, c.ID)
	if err != nil {
		return "", "", err
	}
	var cs []contract.Signature
	for _, sg := range sigs {
		if sg.DocumentSHA256 != c.SHA256 {
			return "", "", fmt.Errorf("the %s's signature is over %s, not the contract's %s", sg.Party, sg.DocumentSHA256, c.SHA256)
		}
		cs = append(cs, contract.Signature{Party: string(sg.Party), Name: sg.Name, SignedAt: sg.SignedAt, IP: sg.IP,
			DocumentSHA256: sg.DocumentSHA256, Via: sg.Via})
	}
	pdf, err := contract.RenderSealed(doc, c.SHA256, cs, s.app.Now())
	if err != nil {
		return "", "", err
	}
	key := sealedKey(c.BookingID, c.TermsN)
	info, err := s.app.Objects(t).Put(ctx, key, "application/pdf", bytes.NewReader(pdf))
	if err != nil {
		return "", "", err
	}
	return key, info.SHA256, nil
}

// sealTaskRun runs TaskContractSeal: a sealed contract is done (a second
// job changes nothing), anything else failing is retried.
func (m *Module) sealTaskRun(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p sealTask
	if err := json.Unmarshal(payload, &p); err != nil || p.BookingID == uuid.Nil {
		return fmt.Errorf("%w: bad contract-seal payload", asynq.SkipRetry)
	}
	_, err := m.svc.Seal(ctx, t, p.BookingID, systemActor)
	var e *app.Error
	if errors.As(err, &e) {
		switch e.Code {
		case "contract_already_sealed":
			return nil
		case "contract_not_signed", "not_found":
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
	}
	return err
}
