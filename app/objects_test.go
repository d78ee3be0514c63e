package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"marquee/app"
	"marquee/config"
	"marquee/tenants"
)

// objectBackends opens the same store twice: on the local disk, and on an
// in-process S3-compatible server (gofakes3) through the S3 client, so every
// test below runs against both implementations.
func objectBackends(t *testing.T) map[string]*app.ObjectStore {
	t.Helper()
	diskCfg := config.Defaults()
	diskCfg.ObjectsDir = t.TempDir()
	disk, err := app.NewObjectStore(diskCfg)
	if err != nil {
		t.Fatal(err)
	}

	mem := s3mem.New()
	if err := mem.CreateBucket("marquee-objects"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(srv.Close)
	s3Cfg := config.Defaults()
	s3Cfg.ObjectsS3Endpoint = srv.URL
	s3Cfg.ObjectsS3Bucket = "marquee-objects"
	s3Cfg.ObjectsS3Region = "us-east-1"
	s3Cfg.ObjectsS3AccessKey = "test-access"
	s3Cfg.ObjectsS3SecretKey = "test-secret-key"
	s3, err := app.NewObjectStore(s3Cfg)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*app.ObjectStore{"disk": disk, "s3": s3}
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func readObject(t *testing.T, o app.Objects, key string) ([]byte, app.ObjectInfo) {
	t.Helper()
	rc, info, err := o.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// TestObjectsRoundTrip: what is put comes back byte for byte with its size,
// media type and SHA-256 (computed here independently); a second put
// replaces it; a delete makes it absent, and deleting again is no error.
func TestObjectsRoundTrip(t *testing.T) {
	for name, store := range objectBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			o := store.For(tenants.Tenant{ID: uuid.New(), Slug: "acme"})
			content := bytes.Repeat([]byte("%PDF-1.4 contract "), 40_000) // ~700 KB
			info, err := o.Put(ctx, "booking/contracts/c1.pdf", "application/pdf", bytes.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			want := app.ObjectInfo{Key: "booking/contracts/c1.pdf", Size: int64(len(content)),
				SHA256: sum(content), ContentType: "application/pdf"}
			if info != want {
				t.Fatalf("put answered %+v, want %+v", info, want)
			}
			got, ginfo := readObject(t, o, "booking/contracts/c1.pdf")
			if !bytes.Equal(got, content) || ginfo != want {
				t.Fatalf("get answered %d bytes, %+v; want %d bytes, %+v", len(got), ginfo, len(content), want)
			}

			if _, err := o.Put(ctx, "booking/contracts/c1.pdf", "application/pdf", bytes.NewReader([]byte("v2"))); err != nil {
				t.Fatal(err)
			}
			if got, ginfo := readObject(t, o, "booking/contracts/c1.pdf"); string(got) != "v2" || ginfo.SHA256 != sum([]byte("v2")) || ginfo.Size != 2 {
				t.Fatalf("after replace: %q %+v", got, ginfo)
			}

			if err := o.Delete(ctx, "booking/contracts/c1.pdf"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := o.Get(ctx, "booking/contracts/c1.pdf"); !errors.Is(err, app.ErrObjectNotFound) {
				t.Fatalf("get after delete: %v, want ErrObjectNotFound", err)
			}
			if err := o.Delete(ctx, "booking/contracts/c1.pdf"); err != nil {
				t.Fatalf("second delete: %v", err)
			}
			if _, _, err := o.Get(ctx, "never/put"); !errors.Is(err, app.ErrObjectNotFound) {
				t.Fatalf("get of a key never put: %v", err)
			}
		})
	}
}

// TestObjectsTenantsApart: the same key names two different objects in two
// chains; neither reads, replaces nor deletes the other's.
func TestObjectsTenantsApart(t *testing.T) {
	for name, store := range objectBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			acme := store.For(tenants.Tenant{ID: uuid.New(), Slug: "acme"})
			rival := store.For(tenants.Tenant{ID: uuid.New(), Slug: "rival"})
			if _, err := acme.Put(ctx, "shared/name.txt", "text/plain", bytes.NewReader([]byte("acme's"))); err != nil {
				t.Fatal(err)
			}
			if _, _, err := rival.Get(ctx, "shared/name.txt"); !errors.Is(err, app.ErrObjectNotFound) {
				t.Fatalf("rival read acme's object: %v", err)
			}
			if _, err := rival.Put(ctx, "shared/name.txt", "text/plain", bytes.NewReader([]byte("rival's"))); err != nil {
				t.Fatal(err)
			}
			if err := rival.Delete(ctx, "shared/name.txt"); err != nil {
				t.Fatal(err)
			}
			if got, _ := readObject(t, acme, "shared/name.txt"); string(got) != "acme's" {
				t.Fatalf("acme's object is now %q", got)
			}
		})
	}
}

// TestObjectsRemoveTenant: removing a tenant's objects (a deleted chain)
// removes every one of them, nested keys included, and nothing of another
// tenant's; removing them again is no error.
func TestObjectsRemoveTenant(t *testing.T) {
	for name, store := range objectBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			gone := tenants.Tenant{ID: uuid.New(), Slug: "gone"}
			kept := tenants.Tenant{ID: uuid.New(), Slug: "kept"}
			var keys []string
			for i := range 25 {
				keys = append(keys, fmt.Sprintf("booking/contracts/%d.pdf", i))
			}
			keys = append(keys, "top.txt", "ops/incidents/a/b/photo.jpg")
			for _, tn := range []tenants.Tenant{gone, kept} {
				for _, k := range keys {
					if _, err := store.For(tn).Put(ctx, k, "text/plain", bytes.NewReader([]byte(tn.Slug+k))); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range 2 {
				if err := store.RemoveTenant(ctx, gone); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range keys {
				if _, _, err := store.For(gone).Get(ctx, k); !errors.Is(err, app.ErrObjectNotFound) {
					t.Fatalf("%s of the removed tenant: %v", k, err)
				}
				if got, _ := readObject(t, store.For(kept), k); string(got) != "kept"+k {
					t.Fatalf("%s of the other tenant is now %q", k, got)
				}
			}
		})
	}
}

// TestObjectsRefuseEscapingKeys: keys that could climb out of the tenant's
// prefix (or the disk root) are refused before anything is written.
func TestObjectsRefuseEscapingKeys(t *testing.T) {
	bad := []string{"", "../other-tenant/x", "a/../../x", "/etc/passwd", "a//b", "a/./b", ".", "..",
		`a\..\b`, "a/b/", "x y", "ä", string(bytes.Repeat([]byte("a"), 600))}
	for name, store := range objectBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			o := store.For(tenants.Tenant{ID: uuid.New()})
			for _, key := range bad {
				if _, err := o.Put(ctx, key, "text/plain", bytes.NewReader([]byte("x"))); !errors.Is(err, app.ErrObjectKey) {
					t.Errorf("put %q: %v, want ErrObjectKey", key, err)
				}
				if _, _, err := o.Get(ctx, key); !errors.Is(err, app.ErrObjectKey) {
					t.Errorf("get %q: %v, want ErrObjectKey", key, err)
				}
				if err := o.Delete(ctx, key); !errors.Is(err, app.ErrObjectKey) {
					t.Errorf("delete %q: %v, want ErrObjectKey", key, err)
				}
			}
		})
	}
}

// TestObjectsDiskLayout: on the disk, a tenant's objects live under its id
// inside the configured directory, and nothing is written outside it.
func TestObjectsDiskLayout(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.ObjectsDir = dir
	store, err := app.NewObjectStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tenant := tenants.Tenant{ID: uuid.New()}
	if _, err := store.For(tenant).Put(context.Background(), "a/b.txt", "text/plain", bytes.NewReader([]byte("hi"))); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "data", tenant.ID.String(), "a", "b.txt"))
	header, content, _ := bytes.Cut(b, []byte("\n"))
	if err != nil || string(content) != "hi" || !bytes.Contains(header, []byte(`"sha256"`)) {
		t.Fatalf("file under the tenant's directory (a header line, then the content): %q, %v", b, err)
	}
	parent, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range parent {
		if e.Name() != filepath.Base(dir) {
			t.Errorf("something written beside the objects directory: %s", e.Name())
		}
	}
}

// TestObjectsConcurrentPuts: many writers of one key at once leave one
// whole object whose digest matches its content (never a mix, never a
// digest of another writer's bytes).
func TestObjectsConcurrentPuts(t *testing.T) {
	for name, store := range objectBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			o := store.For(tenants.Tenant{ID: uuid.New()})
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := bytes.Repeat([]byte(fmt.Sprintf("writer %02d ", i)), 10_000)
					if _, err := o.Put(ctx, "hot/key", "text/plain", bytes.NewReader(body)); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			got, info := readObject(t, o, "hot/key")
			if info.SHA256 != sum(got) || info.Size != int64(len(got)) || len(got) != 100_000 {
				t.Fatalf("object of %d bytes with digest %s (content's %s)", len(got), info.SHA256, sum(got))
			}
			if !bytes.Equal(got, bytes.Repeat(got[:10], 10_000)) {
				t.Fatal("the object mixes two writers' bytes")
			}
		})
	}
}
