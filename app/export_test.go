package app_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/policies"
	"marquee/tenants"
)

// TestExportHoldsEveryTableAndAVerifiableLedger: the owner's export is one
// consistent archive of every table of the chain (row counts and SHA-256 in
// the manifest agree with the files and with the database), and the ledger
// file alone re-verifies by the hash rule its README documents; no other
// role may take it, and another chain's data is never in it.
func TestExportHoldsEveryTableAndAVerifiableLedger(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("export"))
	other := env.Tenant(t, apptest.UniqueSlug("exportx"))
	appendEntries(t, env.App, tn, 25)
	if err := env.App.Tx(context.Background(), tn, func(tx *gorm.DB) error {
		_, err := env.App.Ledger.Append(tx, "ticket.refund", "commande:Zoë—🎫", -12345, "EUR", "a memo, with \"quotes\"\nand a line break")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.App.Tx(context.Background(), other, func(tx *gorm.DB) error {
		_, err := env.App.Ledger.Append(tx, "bar.sale", "other-chain-secret", 999, "EUR", "")
		return err
	}); err != nil {
		t.Fatal(err)
	}

	for _, role := range []string{policies.RoleChainAdmin, policies.RoleFinance} {
		email := role + "@" + tn.Slug + ".test"
		env.User(t, tn, email, role, "")
		res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/export", env.Login(t, tn.Slug, email), nil)
		wantStatus(t, res, http.StatusForbidden, "forbidden")
	}
	res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/export", env.Login(t, tn.Slug, ownerOf(tn)), nil)
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/zip") {
		t.Fatalf("export: %d %s %.200s", res.Status, res.Header.Get("Content-Type"), res.Body)
	}
	if bytes.Contains(res.Body, []byte("other-chain-secret")) {
		t.Fatal("another chain's data is in the export")
	}
	zr, err := zip.NewReader(bytes.NewReader(res.Body), int64(len(res.Body)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
	}
	var m tenants.ExportManifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.Format != tenants.ExportFormat || m.Tenant.Slug != tn.Slug || len(files["README.txt"]) == 0 {
		t.Fatalf("manifest %+v, README %d bytes", m, len(files["README.txt"]))
	}
	var tables []string
	if err := env.App.Tx(context.Background(), tn, func(tx *gorm.DB) error {
		return tx.Raw("SELECT tablename FROM pg_tables WHERE schemaname = ? ORDER BY 1", tn.Schema).Scan(&tables).Error
	}); err != nil {
		t.Fatal(err)
	}
	if len(m.Tables) != len(tables) || len(tables) < 5 {
		t.Fatalf("manifest lists %d tables, the schema has %d", len(m.Tables), len(tables))
	}
	for _, tb := range m.Tables {
		body, ok := files[tb.File]
		if !ok {
			t.Fatalf("%s listed but not in the archive", tb.File)
		}
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != tb.SHA256 {
			t.Fatalf("%s: SHA-256 differs from the manifest", tb.File)
		}
		records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", tb.File, err)
		}
		var n int64
		if err := env.App.Tx(context.Background(), tn, func(tx *gorm.DB) error {
			return tx.Raw("SELECT count(*) FROM " + tb.Name).Scan(&n).Error
		}); err != nil {
			t.Fatal(err)
		}
		if int64(len(records)-1) != tb.Rows || tb.Rows != n {
			t.Fatalf("%s: %d CSV rows, manifest %d, database %d", tb.Name, len(records)-1, tb.Rows, n)
		}
	}
	verifyLedgerCSV(t, files["tables/ledger_entries.csv"], 26)
	if v, ok := m.Extra["ledger_verification"].(map[string]any); !ok || v["ok"] != true || v["entries"] != float64(26) {
		t.Fatalf("manifest's ledger verification: %v", m.Extra)
	}
}

// verifyLedgerCSV recomputes the ledger's hash chain from the exported file
// alone, by the rule the archive's README states.
func verifyLedgerCSV(t *testing.T, body []byte, want int) {
	t.Helper()
	records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(records) < 1 {
		t.Fatalf("ledger CSV: %v", err)
	}
	col := map[string]int{}
	for i, name := range records[0] {
		col[name] = i
	}
	prev := make([]byte, sha256.Size)
	for i, r := range records[1:] {
		h := sha256.New()
		h.Write(prev)
		field := func(b []byte) {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(b)))
			h.Write(n[:])
			h.Write(b)
		}
		num := func(s string) []byte {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("row %d: %v", i+1, err)
			}
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(v))
			return b[:]
		}
		id := uuid.MustParse(r[col["id"]])
		at, err := time.Parse("2006-01-02 15:04:05.999999-07", r[col["recorded_at"]])
		if err != nil {
			t.Fatalf("row %d recorded_at %q: %v", i+1, r[col["recorded_at"]], err)
		}
		field(num(r[col["seq"]]))
		field(id[:])
		field([]byte(at.UTC().Format(time.RFC3339Nano)))
		field([]byte(r[col["kind"]]))
		field([]byte(r[col["reference"]]))
		field(num(r[col["amount_minor"]]))
		field([]byte(r[col["currency"]]))
		field([]byte(r[col["memo"]]))
		got, stored := h.Sum(nil), strings.TrimPrefix(r[col["hash"]], `\x`)
		if hex.EncodeToString(got) != stored || hex.EncodeToString(prev) != strings.TrimPrefix(r[col["prev_hash"]], `\x`) {
			t.Fatalf("ledger row %d does not verify from the export", i+1)
		}
		prev = got
	}
	if len(records)-1 != want {
		t.Fatalf("ledger has %d rows, want %d", len(records)-1, want)
	}
}
