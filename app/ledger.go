package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/tenants"
)

// Ledger is the append-only record of every financial fact of a tenant.
// Rows cannot be updated or deleted (a trigger refuses it); each entry holds
// the hash of the previous one, so any tampering below the trigger (a
// superuser, a restore) is detected by Verify.
//
// An entry is written unsealed in its business transaction (a plain insert,
// no lock: the transactions that append do not wait for each other) and
// sealed into the chain after its commit (seq, previous hash, hash) by
// ledger_seal under the tenant's ledger lock: by this process's sealer at
// once, by the periodic sweep if the process died first, and always before
// the chain is read (Page, Search, Verify, export), so every reader sees
// every committed entry chained.
type Ledger struct {
	servers *tenants.Servers
	sealer  *ledgerSealer
}

// LedgerEntry is one financial fact. Amounts are integer minor units of Currency.
type LedgerEntry struct {
	Seq         int64     `gorm:"column:seq" json:"seq"`
	ID          uuid.UUID `gorm:"column:id" json:"id"`
	RecordedAt  time.Time `gorm:"column:recorded_at" json:"recorded_at"`
	Kind        string    `gorm:"column:kind" json:"kind"`
	Reference   string    `gorm:"column:reference" json:"reference"`
	AmountMinor int64     `gorm:"column:amount_minor" json:"amount_minor"`
	Currency    string    `gorm:"column:currency" json:"currency"`
	Memo        string    `gorm:"column:memo" json:"memo"`
	PrevHash    []byte    `gorm:"column:prev_hash" json:"-"`
	Hash        []byte    `gorm:"column:hash" json:"hash"`
}

var (
	ledgerKind     = regexp.MustCompile(`^[a-z][a-z0-9_.]{1,63}$`)
	ledgerCurrency = regexp.MustCompile(`^[A-Z]{3}$`)
)

// genesis is the previous hash of the first entry.
var genesis = make([]byte, sha256.Size)

// entryHash chains an entry to its predecessor over a length-prefixed
// encoding of every field, so no two different entries hash alike.
func entryHash(prev []byte, e LedgerEntry) []byte {
	h := sha256.New()
	h.Write(prev)
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var num [8]byte
	binary.BigEndian.PutUint64(num[:], uint64(e.Seq))
	field(num[:])
	field(e.ID[:])
	field([]byte(e.RecordedAt.UTC().Format(time.RFC3339Nano)))
	field([]byte(e.Kind))
	field([]byte(e.Reference))
	binary.BigEndian.PutUint64(num[:], uint64(e.AmountMinor))
	field(num[:])
	field([]byte(e.Currency))
	field([]byte(e.Memo))
	return h.Sum(nil)
}

// Append writes an entry inside the caller's tenant transaction, so the
// financial fact commits or rolls back with the business change it records.
// It is sealed into the chain after the commit: the returned entry has no
// seq or hashes yet.
func (l *Ledger) Append(tx *gorm.DB, kind, reference string, amountMinor int64, currency, memo string) (LedgerEntry, error) {
	if !ledgerKind.MatchString(kind) {
		return LedgerEntry{}, fmt.Errorf("ledger: bad kind %q", kind)
	}
	if !ledgerCurrency.MatchString(currency) {
		return LedgerEntry{}, fmt.Errorf("ledger: bad currency %q", currency)
	}
	e := LedgerEntry{ID: uuid.Must(uuid.NewV7()), RecordedAt: time.Now().UTC().Truncate(time.Microsecond),
		Kind: kind, Reference: reference, AmountMinor: amountMinor, Currency: currency, Memo: memo}
	err := tx.Exec(`INSERT INTO ledger_entries (id, recorded_at, kind, reference, amount_minor, currency, memo) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.RecordedAt, e.Kind, e.Reference, e.AmountMinor, e.Currency, e.Memo).Error
	if err != nil {
		return LedgerEntry{}, err
	}
	if l.sealer != nil {
		if t, ok := tenants.TenantOfTx(tx); ok {
			l.sealer.kick(t)
		}
	}
	return e, nil
}

// AppendStep is Append as a step of a piped transaction (tenants.Piped):
// the same unsealed insert. The caller calls Committed after the commit.
func (l *Ledger) AppendStep(kind, reference string, amountMinor int64, currency, memo string) (tenants.Step, LedgerEntry, error) {
	e, err := l.NewEntry(kind, reference, amountMinor, currency, memo)
	if err != nil {
		return tenants.Step{}, LedgerEntry{}, err
	}
	return tenants.Step{SQL: `INSERT INTO ledger_entries (id, recorded_at, kind, reference, amount_minor, currency, memo) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		Args: []any{e.ID, e.RecordedAt, e.Kind, e.Reference, e.AmountMinor, e.Currency, e.Memo}}, e, nil
}

// NewEntry prepares an entry for a statement that inserts it itself,
// unsealed (a hot path that keeps its whole transaction in one statement):
// the same checks and id as Append. After the statement commits, the caller
// calls Committed so the sealer chains the entry.
func (l *Ledger) NewEntry(kind, reference string, amountMinor int64, currency, memo string) (LedgerEntry, error) {
	if !ledgerKind.MatchString(kind) {
		return LedgerEntry{}, fmt.Errorf("ledger: bad kind %q", kind)
	}
	if !ledgerCurrency.MatchString(currency) {
		return LedgerEntry{}, fmt.Errorf("ledger: bad currency %q", currency)
	}
	return LedgerEntry{ID: uuid.Must(uuid.NewV7()), RecordedAt: time.Now().UTC().Truncate(time.Microsecond),
		Kind: kind, Reference: reference, AmountMinor: amountMinor, Currency: currency, Memo: memo}, nil
}

// Committed says a transaction of t that inserted unsealed entries itself
// (NewEntry's) has committed: the sealer chains them now rather than at the
// next minute's sweep. Append's entries need no call (Append kicks it).
func (l *Ledger) Committed(t tenants.Tenant) {
	if l.sealer != nil {
		l.sealer.kick(t)
	}
}

// sealBatch is how many entries one ledger_seal call chains.
const sealBatch = 1000

// Seal chains every committed unsealed entry of the tenant.
func (l *Ledger) Seal(ctx context.Context, t tenants.Tenant) (int, error) {
	total := 0
	for {
		var n int
		err := l.servers.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT ledger_seal(?)`, sealBatch).Row().Scan(&n)
		})
		total += n
		if err != nil || n < sealBatch {
			return total, err
		}
	}
}

const ledgerColumns = "seq, id, recorded_at, kind, reference, amount_minor, currency, memo, prev_hash, hash"

// Page returns up to limit entries after seq (the committed ones sealed first).
func (l *Ledger) Page(ctx context.Context, t tenants.Tenant, afterSeq int64, limit int) ([]LedgerEntry, error) {
	if _, err := l.Seal(ctx, t); err != nil {
		return nil, err
	}
	return l.page(ctx, t, afterSeq, limit)
}

func (l *Ledger) page(ctx context.Context, t tenants.Tenant, afterSeq int64, limit int) ([]LedgerEntry, error) {
	var out []LedgerEntry
	err := l.servers.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw("SELECT "+ledgerColumns+" FROM ledger_entries WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit).Scan(&out).Error
	})
	return out, err
}

// ErrLedgerBroken reports a chain that does not verify.
var ErrLedgerBroken = errors.New("ledger chain broken")

// VerifyResult is the outcome of Verify.
type VerifyResult struct {
	OK       bool   `json:"ok"`
	Entries  int64  `json:"entries"`
	BrokenAt int64  `json:"broken_at,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Verify seals what is committed, then walks the whole chain in pages and
// recomputes every hash.
func (l *Ledger) Verify(ctx context.Context, t tenants.Tenant) (VerifyResult, error) {
	if _, err := l.Seal(ctx, t); err != nil {
		return VerifyResult{}, err
	}
	prev, after := genesis, int64(0)
	var n int64
	for {
		page, err := l.page(ctx, t, after, 1000)
		if err != nil {
			return VerifyResult{}, err
		}
		for _, e := range page {
			n++
			switch {
			case e.Seq != n:
				return VerifyResult{Entries: n, BrokenAt: e.Seq, Reason: fmt.Sprintf("gap: expected seq %d", n)}, nil
			case !bytes.Equal(e.PrevHash, prev):
				return VerifyResult{Entries: n, BrokenAt: e.Seq, Reason: "previous-hash link does not match"}, nil
			case !bytes.Equal(e.Hash, entryHash(prev, e)):
				return VerifyResult{Entries: n, BrokenAt: e.Seq, Reason: "entry content does not match its hash"}, nil
			}
			prev, after = e.Hash, e.Seq
		}
		if len(page) < 1000 {
			return VerifyResult{OK: true, Entries: n}, nil
		}
	}
}
