package tenants

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ExportFormat names the archive layout Export writes (documented in
// exportReadme, which travels inside every archive).
const ExportFormat = "marquee-export/1"

// ExportManifest is manifest.json of an export archive.
type ExportManifest struct {
	Format     string        `json:"format"`
	Tenant     ExportTenant  `json:"tenant"`
	ExportedAt time.Time     `json:"exported_at"`
	Tables     []ExportTable `json:"tables"`
	// Extra holds what the caller adds (the ledger's verification).
	Extra map[string]any `json:"extra,omitempty"`
}

// ExportTenant says whose data an archive holds.
type ExportTenant struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// ExportTable is one table's file in the archive.
type ExportTable struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

const exportReadme = `Marquee data export (format marquee-export/1)

This archive holds every table of one chain's data as it was at one instant
(one read-only snapshot of the chain's database schema):

  manifest.json       the chain, the time of the export, and per table its
                      file, row count and SHA-256; "extra" holds the ledger's
                      verification at export time
  tables/<name>.csv   one file per table: CSV (RFC 4180), a header row with
                      the column names, values in PostgreSQL's text form
                      (times in UTC, money in integer minor units beside a
                      currency column, binary values as \x-prefixed hex)

The money ledger is tables/ledger_entries.csv. Each entry's hash is
SHA-256 over: the previous entry's hash (32 zero bytes for the first), then
each of seq (8-byte big-endian), id (16 bytes), recorded_at (RFC 3339 with
nanoseconds, UTC), kind, reference, amount_minor (8-byte big-endian two's
complement), currency and memo, each field preceded by its length as an
8-byte big-endian integer. Recomputing the chain from the file proves no
entry was changed, removed or reordered. Entries are chained just after
the transaction that wrote them commits: one committed while the export
began can be in the file unsealed (seq, prev_hash and hash empty); it is
the next entry of the chain, not part of it yet.
`

// Export writes a zip archive of all of a tenant's data to w: every table
// of its schema as CSV, read in one repeatable-read snapshot so the files
// agree with each other, plus manifest.json and a README. extra goes into
// the manifest as is.
func Export(ctx context.Context, servers *Servers, t Tenant, w io.Writer, now time.Time, extra map[string]any) (ExportManifest, error) {
	m := ExportManifest{Format: ExportFormat, Tenant: ExportTenant{ID: t.ID.String(), Slug: t.Slug, Name: t.Name}, ExportedAt: now.UTC(), Tables: []ExportTable{}, Extra: extra}
	srv, err := servers.For(t)
	if err != nil {
		return m, err
	}
	conn, err := srv.SQL.Conn(ctx)
	if err != nil {
		return m, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return m, err
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
	tables, err := schemaTables(ctx, conn, t.Schema)
	if err != nil {
		return m, err
	}
	zw := zip.NewWriter(w)
	for _, table := range tables {
		file := "tables/" + table + ".csv"
		f, err := zw.Create(file)
		if err != nil {
			return m, err
		}
		sum := sha256.New()
		var rows int64
		err = conn.Raw(func(dc any) error {
			q := "COPY (SELECT * FROM " + pgx.Identifier{t.Schema, table}.Sanitize() + ") TO STDOUT WITH (FORMAT csv, HEADER true)"
			tag, err := dc.(*stdlib.Conn).Conn().PgConn().CopyTo(ctx, io.MultiWriter(f, sum), q)
			rows = tag.RowsAffected()
			return err
		})
		if err != nil {
			return m, fmt.Errorf("export %s: %w", table, err)
		}
		m.Tables = append(m.Tables, ExportTable{Name: table, File: file, Rows: rows, SHA256: hex.EncodeToString(sum.Sum(nil))})
	}
	for name, body := range map[string][]byte{"README.txt": []byte(exportReadme)} {
		f, err := zw.Create(name)
		if err != nil {
			return m, err
		}
		if _, err := f.Write(body); err != nil {
			return m, err
		}
	}
	f, err := zw.Create("manifest.json")
	if err != nil {
		return m, err
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return m, err
	}
	return m, zw.Close()
}

// schemaTables lists a schema's tables (partitioned parents, not their
// partitions, whose rows the parent's SELECT already returns).
func schemaTables(ctx context.Context, conn *sql.Conn, schema string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		ORDER BY c.relname`, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}
