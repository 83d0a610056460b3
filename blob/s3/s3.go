// Package s3 is the scale-out blob.Store: objects in a bucket of an
// S3-compatible service (Amazon S3, MinIO, Ceph, Garage…), shared by every
// Herald node.
//
// Put streams the object as a multipart upload, holding one part in memory
// at a time, and S3 makes the object visible only when the upload completes,
// which is what makes Put atomic. Reads are ranged GETs of exactly the bytes
// asked for, so seeking in a large video costs what is read, not the file.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/heraldim/herald/blob"
)

// Part sizes of uploads. S3 allows at most 10,000 parts, so the part size
// also bounds the object size: 156 GiB at the default.
const (
	DefaultPartSize = 16 << 20
	MinPartSize     = 5 << 20 // the smallest S3 accepts
)

// Config says which bucket to use and how to reach it.
type Config struct {
	Endpoint  string // host or host:port of the service, without a scheme
	Bucket    string // created by New if missing
	Region    string // empty to ask the service
	AccessKey string
	SecretKey string
	Secure    bool // use HTTPS
	// Prefix is prepended to every key, so Herald can share a bucket: with
	// "herald", key "files/x" is the object "herald/files/x".
	Prefix string
	// PathStyle puts the bucket in the URL path rather than the host name.
	// Left false, it is used for every endpoint but the big clouds'.
	PathStyle bool
	// PartSize is the size of the parts of an upload, and so the memory
	// that each Put in progress holds: DefaultPartSize if zero, at least
	// MinPartSize otherwise.
	PartSize int64
}

// Store is a blob.Store in an S3 bucket. It is safe for concurrent use.
type Store struct {
	client   *minio.Client
	bucket   string
	prefix   string
	partSize uint64
}

var _ blob.Store = (*Store)(nil)

// New connects to the service, creating the bucket if it does not exist.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3: an endpoint and a bucket are required")
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize {
		return nil, fmt.Errorf("s3: part size %d is below the minimum of %d", partSize, MinPartSize)
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	s := &Store{client: client, bucket: cfg.Bucket, partSize: uint64(partSize)}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		s.prefix = p + "/"
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err == nil && !ok {
		err = client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if minio.ToErrorResponse(err).Code == minio.BucketAlreadyOwnedByYou {
			err = nil // another node created it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	return s, nil
}

// smallObject is the size up to which Put sends an object in a single
// request. It is also what a Put holds in memory besides its part.
const smallObject = 1 << 20

// Put implements blob.Store. Each Put in progress holds one part in memory.
// A failed upload is aborted; if even the abort fails (say the context
// ended), the parts stay on the service, invisible, until a bucket
// lifecycle rule that aborts incomplete multipart uploads removes them.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := blob.ValidKey(key); err != nil {
		return 0, err
	}
	// A small object goes up in one request, rather than the three of a
	// multipart upload; which it is can only be told by reading it.
	src := source{ctx, r}
	var head bytes.Buffer
	var body io.Reader
	size := int64(-1)
	switch _, err := io.CopyN(&head, src, smallObject+1); err {
	case io.EOF:
		// Seekable, so minio neither copies it nor gives up on a retry.
		body, size = bytes.NewReader(head.Bytes()), int64(head.Len())
	case nil:
		body = io.MultiReader(&head, src)
	default:
		return 0, fmt.Errorf("s3: put %s: %w", key, err)
	}
	info, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, body, size, minio.PutObjectOptions{
		PartSize:    s.partSize,
		ContentType: "application/octet-stream",
		// Over plain HTTP minio would otherwise sign every chunk of every
		// part (SHA-256 and HMAC per 64 KiB). The bytes are already sealed
		// with an AEAD above this layer, so tampering is caught on read
		// anyway; over HTTPS the payload goes unsigned regardless.
		DisableContentSha256: true,
	})
	if err != nil {
		return 0, fmt.Errorf("s3: put %s: %w", key, err)
	}
	return info.Size, nil
}

// source is the reader of a Put. It stops the upload when ctx ends, and
// hides io.ErrUnexpectedEOF from minio, which takes it for the end of the
// data and would complete the upload: a truncated request body reports
// exactly that error, and must fail the Put instead.
type source struct {
	ctx context.Context
	r   io.Reader
}

func (s source) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading the object: %w", err)
	}
	return n, err
}

// Open implements blob.Store. It asks only for the object's size and ETag;
// the bytes are fetched by ReadAt, with ctx.
func (s *Store) Open(ctx context.Context, key string) (blob.Object, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return nil, s.err("open", key, err)
	}
	return &object{ctx: ctx, s: s, key: key, size: info.Size, etag: info.ETag}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		if err = s.err("delete", key, err); !errors.Is(err, blob.ErrNotFound) {
			return err
		}
	}
	return nil
}

// List implements blob.Store. Objects under the prefix that no key could
// name, put there by something other than Herald, are left out.
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Info, error) {
	if err := blob.ValidPrefix(prefix); err != nil {
		return nil, err
	}
	// Cancelling is how a minio listing is stopped early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []blob.Info
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("s3: list %q: %w", prefix, o.Err)
		}
		key := strings.TrimPrefix(o.Key, s.prefix)
		if blob.ValidKey(key) != nil {
			continue
		}
		out = append(out, blob.Info{Key: key, Size: o.Size, Modified: o.LastModified})
	}
	// S3 lists in byte order already; sorting keeps the promise for
	// services that do not.
	slices.SortFunc(out, func(a, b blob.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// errChanged is the error of a read from an object that was replaced after
// it was opened.
var errChanged = errors.New("the object was replaced after it was opened")

// err wraps an error of op on key, mapping a missing object to
// blob.ErrNotFound and a failed If-Match to errChanged.
func (s *Store) err(op, key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey:
		err = blob.ErrNotFound
	case minio.PreconditionFailed:
		err = errChanged
	}
	return fmt.Errorf("s3: %s %s: %w", op, key, err)
}

// object reads one version of an object by ranged GETs.
type object struct {
	ctx    context.Context
	s      *Store
	key    string
	size   int64
	etag   string
	closed atomic.Bool
}

// ReadAt fetches exactly the bytes of p that the object has at off, in one
// request. It fails, rather than return bytes of another version, if the
// object was replaced since Open.
func (o *object) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case o.closed.Load():
		return 0, fmt.Errorf("s3: read %s: %w", o.key, fs.ErrClosed)
	case off < 0:
		return 0, fmt.Errorf("s3: read %s: negative offset %d", o.key, off)
	case off >= o.size:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	n := min(int64(len(p)), o.size-off)
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+n-1); err != nil {
		return 0, fmt.Errorf("s3: read %s: %w", o.key, err)
	}
	if o.etag != "" {
		// Services that honour If-Match refuse a new version up front;
		// the ETag check below catches the others.
		opts.SetMatchETag(o.etag)
	}
	body, info, h, err := minio.Core{Client: o.s.client}.GetObject(o.ctx, o.s.bucket, o.s.prefix+o.key, opts)
	if err != nil {
		return 0, o.s.err("read", o.key, err)
	}
	defer body.Close()
	if o.etag != "" && info.ETag != o.etag {
		return 0, fmt.Errorf("s3: read %s: %w", o.key, errChanged)
	}
	// A service that ignores Range sends the object from its start.
	if want := fmt.Sprintf("bytes %d-%d/", off, off+n-1); off != 0 && !strings.HasPrefix(h.Get("Content-Range"), want) {
		return 0, fmt.Errorf("s3: read %s: service answered a range request with %q", o.key, h.Get("Content-Range"))
	}
	got, err := io.ReadFull(body, p[:n])
	if err != nil {
		return got, fmt.Errorf("s3: read %s: %w", o.key, err)
	}
	if n < int64(len(p)) {
		return got, io.EOF
	}
	return got, nil
}

// Close implements blob.Object. There is nothing to release: each ReadAt
// closes its own response.
func (o *object) Close() error {
	o.closed.Store(true)
	return nil
}

// Size implements blob.Object.
func (o *object) Size() int64 { return o.size }
