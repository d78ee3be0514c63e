package app

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"marquee/config"
	"marquee/tenants"
)

// ObjectInfo describes a stored object: its key (as the module named it,
// without the tenant's prefix), its size in bytes, the SHA-256 of its content
// (hex) and its media type.
type ObjectInfo struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"contentType"`
}

// Objects stores one tenant's files (contracts, invoices, photos). Keys are
// slash-separated names chosen by the module ("booking/contracts/<id>.pdf");
// the store puts them under the tenant, so one chain can never name
// another's objects.
type Objects interface {
	// Put stores the reader's content under key, replacing what was there,
	// and returns its size and SHA-256 as stored.
	Put(ctx context.Context, key, contentType string, r io.Reader) (ObjectInfo, error)
	// Get opens the object; the caller closes it. ErrObjectNotFound when absent.
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// Delete removes the object; deleting an absent one is not an error.
	Delete(ctx context.Context, key string) error
}

// ErrObjectNotFound is returned by Get for a key that holds nothing.
var ErrObjectNotFound = errors.New("object not found")

// ErrObjectKey is returned for a key that is empty, absolute, has empty,
// "." or ".." segments, or characters outside [A-Za-z0-9._-/].
var ErrObjectKey = errors.New("invalid object key")

// Objects returns the tenant's object store (Core.Objects).
func (c *Core) Objects(t tenants.Tenant) Objects { return c.a.objects.For(t) }

// ObjectStore is the deployment's object storage: the local disk
// (MARQUEE_OBJECTS_DIR) or an S3-compatible bucket
// (MARQUEE_OBJECTS_S3_ENDPOINT…). Modules reach it one tenant at a time.
type ObjectStore struct{ backend objectBackend }

// NewObjectStore opens the storage the configuration names: S3-compatible
// when an endpoint is set, the local disk otherwise.
func NewObjectStore(cfg config.Config) (*ObjectStore, error) {
	var b objectBackend
	var err error
	if cfg.ObjectsS3Endpoint != "" {
		b, err = newS3Objects(cfg)
	} else {
		b, err = newDiskObjects(cfg.ObjectsDir)
	}
	if err != nil {
		return nil, err
	}
	return &ObjectStore{backend: b}, nil
}

// For returns the tenant's objects: every key under the tenant's id, which
// neither a slug change nor a move to another server alters.
func (s *ObjectStore) For(t tenants.Tenant) Objects {
	return tenantObjects{backend: s.backend, prefix: t.ID.String() + "/"}
}

// RemoveTenant removes every object of a tenant (a deleted chain's files);
// removing a tenant with none is not an error.
func (s *ObjectStore) RemoveTenant(ctx context.Context, t tenants.Tenant) error {
	return s.backend.removeAll(ctx, t.ID.String()+"/")
}

// objectBackend stores objects under full keys (the tenant prefix included).
type objectBackend interface {
	put(ctx context.Context, key, contentType string, r io.Reader) (ObjectInfo, error)
	get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	remove(ctx context.Context, key string) error
	// removeAll removes every object whose key starts with prefix, a
	// tenant's "<id>/".
	removeAll(ctx context.Context, prefix string) error
}

var objectKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)

func checkObjectKey(key string) error {
	if len(key) > 512 || !objectKeyPattern.MatchString(key) {
		return fmt.Errorf("%w: %q", ErrObjectKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", ErrObjectKey, key)
		}
	}
	return nil
}

type tenantObjects struct {
	backend objectBackend
	prefix  string
}

func (o tenantObjects) Put(ctx context.Context, key, contentType string, r io.Reader) (ObjectInfo, error) {
	if err := checkObjectKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	info, err := o.backend.put(ctx, o.prefix+key, contentType, r)
	info.Key = key
	return info, err
}

func (o tenantObjects) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := checkObjectKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	rc, info, err := o.backend.get(ctx, o.prefix+key)
	info.Key = key
	return rc, info, err
}

func (o tenantObjects) Delete(ctx context.Context, key string) error {
	if err := checkObjectKey(key); err != nil {
		return err
	}
	return o.backend.remove(ctx, o.prefix+key)
}

// spool copies r into a temporary file while hashing it, so the backend
// learns the size and digest before it writes (S3 wants the length up
// front; the disk wants an atomic rename). The caller removes the file.
func spool(dir string, r io.Reader) (*os.File, int64, string, error) {
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return nil, 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, 0, "", err
	}
	return f, n, hex.EncodeToString(h.Sum(nil)), nil
}

// diskObjects keeps each object as one file under root/data: a first line
// of JSON (its media type, size and digest, read back by Get without hashing
// the file again), then the content. One file renamed into place makes a
// write atomic: two writers of one key leave one of them whole, never the
// content of one with the digest of the other.
type diskObjects struct{ root string }

// DefaultObjectsDir is where objects go when MARQUEE_OBJECTS_DIR is unset.
func DefaultObjectsDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "marquee", "objects")
	}
	return filepath.Join(os.TempDir(), "marquee-objects")
}

func newDiskObjects(root string) (*diskObjects, error) {
	if root == "" {
		root = DefaultObjectsDir()
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"data", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o750); err != nil {
			return nil, fmt.Errorf("objects directory: %w", err)
		}
	}
	return &diskObjects{root: root}, nil
}

// path joins a checked key under one of the store's directories; the check
// after Join is a second wall against a key that escapes the root.
func (d *diskObjects) path(dir, key string) (string, error) {
	base := filepath.Join(d.root, dir)
	p := filepath.Join(base, filepath.FromSlash(key))
	if !strings.HasPrefix(p, base+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %q", ErrObjectKey, key)
	}
	return p, nil
}

func (d *diskObjects) put(_ context.Context, key, contentType string, r io.Reader) (ObjectInfo, error) {
	dataPath, err := d.path("data", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	tmp := filepath.Join(d.root, "tmp")
	content, size, sum, err := spool(tmp, r)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer func() { _ = content.Close(); _ = os.Remove(content.Name()) }()
	info := ObjectInfo{Key: key, Size: size, SHA256: sum, ContentType: contentType}
	header, _ := json.Marshal(info)
	f, err := os.CreateTemp(tmp, ".object-*")
	if err != nil {
		return ObjectInfo{}, err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	_, err = f.Write(append(header, '\n'))
	if err == nil {
		_, err = io.Copy(f, content)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(dataPath), 0o750)
	}
	if err == nil {
		err = os.Rename(f.Name(), dataPath)
	}
	if err != nil {
		return ObjectInfo{}, err
	}
	return info, nil
}

// objectFile reads an object's content after its header line.
type objectFile struct {
	*bufio.Reader
	f *os.File
}

func (o objectFile) Close() error { return o.f.Close() }

func (d *diskObjects) get(_ context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	dataPath, err := d.path("data", key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	f, err := os.Open(dataPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ObjectInfo{}, ErrObjectNotFound
	}
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	br := bufio.NewReader(f)
	var info ObjectInfo
	line, err := br.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &info)
	}
	if err != nil {
		_ = f.Close()
		return nil, ObjectInfo{}, fmt.Errorf("object header: %w", err)
	}
	return objectFile{Reader: br, f: f}, info, nil
}

func (d *diskObjects) remove(_ context.Context, key string) error {
	dataPath, err := d.path("data", key)
	if err != nil {
		return err
	}
	if err := os.Remove(dataPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (d *diskObjects) removeAll(_ context.Context, prefix string) error {
	dir, err := d.path("data", strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// s3Objects keeps objects in an S3-compatible bucket (AWS S3, MinIO, R2…),
// the digest in the object's user metadata.
type s3Objects struct {
	client *minio.Client
	bucket string
}

const s3DigestMeta = "Sha256"

func newS3Objects(cfg config.Config) (*s3Objects, error) {
	endpoint, secure := cfg.ObjectsS3Endpoint, true
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		endpoint, secure = u.Host, u.Scheme != "http"
	}
	if cfg.ObjectsS3Bucket == "" {
		return nil, errors.New("MARQUEE_OBJECTS_S3_BUCKET is required with MARQUEE_OBJECTS_S3_ENDPOINT")
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.ObjectsS3AccessKey, cfg.ObjectsS3SecretKey, ""),
		Secure: secure,
		Region: cfg.ObjectsS3Region,
		// Path-style addressing works with every S3-compatible server;
		// virtual-host style needs DNS for each bucket.
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("object storage: %w", err)
	}
	return &s3Objects{client: client, bucket: cfg.ObjectsS3Bucket}, nil
}

func (s *s3Objects) put(ctx context.Context, key, contentType string, r io.Reader) (ObjectInfo, error) {
	f, size, sum, err := spool("", r)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	_, err = s.client.PutObject(ctx, s.bucket, key, f, size, minio.PutObjectOptions{
		ContentType:  contentType,
		UserMetadata: map[string]string{s3DigestMeta: sum},
	})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("object storage put: %w", err)
	}
	return ObjectInfo{Key: key, Size: size, SHA256: sum, ContentType: contentType}, nil
}

func (s *s3Objects) get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, s3Error(err)
	}
	// GetObject is lazy: Stat makes the request and reports a missing key.
	st, err := obj.Stat()
	if err != nil {
		_ = obj.Close()
		return nil, ObjectInfo{}, s3Error(err)
	}
	var sum string
	for k, v := range st.UserMetadata {
		if strings.EqualFold(k, s3DigestMeta) {
			sum = v
		}
	}
	return obj, ObjectInfo{Key: key, Size: st.Size, SHA256: sum, ContentType: st.ContentType}, nil
}

func (s *s3Objects) remove(ctx context.Context, key string) error {
	return s3Error(s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}))
}

func (s *s3Objects) removeAll(ctx context.Context, prefix string) error {
	// The listing feeds the batch deletion as it pages; a listing error
	// stops both.
	keys := make(chan minio.ObjectInfo)
	var listErr error
	go func() {
		defer close(keys)
		for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			select {
			case keys <- o:
			case <-ctx.Done():
				return
			}
		}
	}()
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.bucket, keys, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("remove %s: %w", e.ObjectName, e.Err))
	}
	// RemoveObjects ends only after keys is closed, so listErr is final.
	if listErr != nil {
		errs = append(errs, fmt.Errorf("list %s: %w", prefix, listErr))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("object storage: %w", err)
	}
	return ctx.Err()
}

func s3Error(err error) error {
	if err == nil {
		return nil
	}
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return ErrObjectNotFound
	}
	return fmt.Errorf("object storage: %w", err)
}
