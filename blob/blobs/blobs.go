// Package blobs opens the blob.Store that a configuration URL names. It
// stands apart from package blob so that blob need not import its own
// implementations.
package blobs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/heraldim/herald/blob"
	"github.com/heraldim/herald/blob/dir"
	"github.com/heraldim/herald/blob/s3"
)

// The environment variables that carry S3 credentials. The HERALD_ pair is
// used if its access key is set; otherwise the AWS pair.
const (
	EnvAccessKey    = "HERALD_S3_ACCESS_KEY"
	EnvSecretKey    = "HERALD_S3_SECRET_KEY"
	EnvAWSAccessKey = "AWS_ACCESS_KEY_ID"
	EnvAWSSecretKey = "AWS_SECRET_ACCESS_KEY"
)

// Open returns the store that rawURL names:
//
//	""                     a directory store in dataDir/blobs
//	file:///abs/path       a directory store at /abs/path
//	s3://bucket?params     an S3 store (see below)
//
// The parameters of an s3 URL are endpoint (host:port, default
// s3.amazonaws.com), region (default: ask the service), secure (false for
// plain HTTP, default true) and prefix (prepended to every key, default
// none). The credentials come from the environment, EnvAccessKey and
// EnvSecretKey or else EnvAWSAccessKey and EnvAWSSecretKey, never from the
// URL.
func Open(ctx context.Context, rawURL, dataDir string) (blob.Store, error) {
	c, err := parse(rawURL, dataDir, os.Getenv)
	if err != nil {
		return nil, err
	}
	if c.dir != "" {
		return dir.New(c.dir)
	}
	return s3.New(ctx, c.s3)
}

// config is what a URL says: a directory, or else an S3 configuration.
type config struct {
	dir string
	s3  s3.Config
}

func parse(rawURL, dataDir string, getenv func(string) string) (config, error) {
	if rawURL == "" {
		if dataDir == "" {
			return config{}, errors.New("blobs: no blob URL and no data directory to keep blobs in")
		}
		return config{dir: filepath.Join(dataDir, "blobs")}, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the whole URL, which may hold a secret.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return config{}, fmt.Errorf("blobs: malformed blob URL: %w", err)
	}
	if u.User != nil {
		return config{}, fmt.Errorf("blobs: a %s URL must not carry credentials: URLs end up in logs, process lists and shell history; set %s and %s instead",
			u.Scheme, EnvAccessKey, EnvSecretKey)
	}
	switch u.Scheme {
	case "file":
		return parseFile(u)
	case "s3":
		return parseS3(u, getenv)
	}
	return config{}, fmt.Errorf("blobs: blob URL scheme %q is not file or s3", u.Scheme)
}

func parseFile(u *url.URL) (config, error) {
	if u.Host != "" && u.Host != "localhost" || u.Opaque != "" || !filepath.IsAbs(u.Path) {
		return config{}, fmt.Errorf("blobs: file URL %q is not of the form file:///absolute/path", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return config{}, fmt.Errorf("blobs: file URL %q takes no parameters", u.Redacted())
	}
	return config{dir: filepath.Clean(u.Path)}, nil
}

func parseS3(u *url.URL, getenv func(string) string) (config, error) {
	c := s3.Config{Bucket: u.Host, Endpoint: "s3.amazonaws.com", Secure: true}
	if c.Bucket == "" || u.Opaque != "" {
		return config{}, fmt.Errorf("blobs: s3 URL %q names no bucket: want s3://bucket?endpoint=host:port", u.Redacted())
	}
	if u.Port() != "" {
		return config{}, fmt.Errorf("blobs: s3 URL %q has a port after the bucket; give the service as ?endpoint=host:port", u.Redacted())
	}
	if u.Path != "" && u.Path != "/" {
		return config{}, fmt.Errorf("blobs: s3 URL %q has a path; give a key prefix as ?prefix=", u.Redacted())
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return config{}, fmt.Errorf("blobs: s3 URL parameters: %w", err)
	}
	for name, values := range q {
		if len(values) != 1 {
			return config{}, fmt.Errorf("blobs: s3 URL parameter %s given %d times", name, len(values))
		}
		v := values[0]
		switch name {
		case "endpoint":
			c.Endpoint = v
		case "region":
			c.Region = v
		case "prefix":
			c.Prefix = v
		case "secure":
			if c.Secure, err = strconv.ParseBool(v); err != nil {
				return config{}, fmt.Errorf("blobs: s3 URL parameter secure=%q is not true or false", v)
			}
		default:
			return config{}, fmt.Errorf("blobs: unknown s3 URL parameter %q (want endpoint, region, secure or prefix)", name)
		}
	}
	if c.Endpoint == "" {
		return config{}, errors.New("blobs: s3 URL parameter endpoint is empty")
	}
	c.AccessKey, c.SecretKey = getenv(EnvAccessKey), getenv(EnvSecretKey)
	if c.AccessKey == "" {
		c.AccessKey, c.SecretKey = getenv(EnvAWSAccessKey), getenv(EnvAWSSecretKey)
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return config{}, fmt.Errorf("blobs: S3 credentials missing: set %s and %s (or %s and %s)",
			EnvAccessKey, EnvSecretKey, EnvAWSAccessKey, EnvAWSSecretKey)
	}
	return config{s3: c}, nil
}
