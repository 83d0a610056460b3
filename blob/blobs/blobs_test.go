package blobs

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/heraldim/herald/blob/dir"
	"github.com/heraldim/herald/blob/s3"
)

func TestParse(t *testing.T) {
	herald := map[string]string{EnvAccessKey: "hak", EnvSecretKey: "hsk", EnvAWSAccessKey: "aak", EnvAWSSecretKey: "ask"}
	aws := map[string]string{EnvAWSAccessKey: "aak", EnvAWSSecretKey: "ask"}
	tests := []struct {
		name    string
		url     string
		env     map[string]string
		want    config
		wantErr string // a part of the error; empty for success
	}{
		{name: "default", url: "", want: config{dir: "/data/blobs"}},
		{name: "file", url: "file:///srv/herald/blobs", want: config{dir: "/srv/herald/blobs"}},
		{name: "file localhost", url: "file://localhost/srv/b/", want: config{dir: "/srv/b"}},
		{name: "file relative", url: "file://srv/b", wantErr: "file:///absolute/path"},
		{name: "file opaque", url: "file:b", wantErr: "file:///absolute/path"},
		{name: "file query", url: "file:///srv/b?x=1", wantErr: "no parameters"},
		{name: "s3 minimal aws env", url: "s3://media", env: aws,
			want: config{s3: s3.Config{Endpoint: "s3.amazonaws.com", Bucket: "media", Secure: true, AccessKey: "aak", SecretKey: "ask"}}},
		{name: "s3 herald env wins", url: "s3://media?endpoint=minio:9000&region=eu-west-1&secure=false&prefix=herald/", env: herald,
			want: config{s3: s3.Config{Endpoint: "minio:9000", Bucket: "media", Region: "eu-west-1", Prefix: "herald/", AccessKey: "hak", SecretKey: "hsk"}}},
		{name: "s3 trailing slash", url: "s3://media/?secure=1", env: aws,
			want: config{s3: s3.Config{Endpoint: "s3.amazonaws.com", Bucket: "media", Secure: true, AccessKey: "aak", SecretKey: "ask"}}},
		{name: "s3 no credentials", url: "s3://media", wantErr: EnvAccessKey},
		{name: "s3 half credentials", url: "s3://media", env: map[string]string{EnvAccessKey: "hak"}, wantErr: EnvSecretKey},
		{name: "s3 credentials in URL", url: "s3://key:secret@media?endpoint=h:1", env: aws, wantErr: "must not carry credentials"},
		{name: "s3 user in URL", url: "s3://key@media", env: aws, wantErr: "must not carry credentials"},
		{name: "s3 no bucket", url: "s3:///?endpoint=h:1", env: aws, wantErr: "names no bucket"},
		{name: "s3 path", url: "s3://media/herald", env: aws, wantErr: "?prefix="},
		{name: "s3 port", url: "s3://media:9000", env: aws, wantErr: "?endpoint="},
		{name: "s3 unknown parameter", url: "s3://media?endpiont=h:1", env: aws, wantErr: `"endpiont"`},
		{name: "s3 repeated parameter", url: "s3://media?region=a&region=b", env: aws, wantErr: "2 times"},
		{name: "s3 bad secure", url: "s3://media?secure=maybe", env: aws, wantErr: "secure"},
		{name: "s3 empty endpoint", url: "s3://media?endpoint=", env: aws, wantErr: "endpoint is empty"},
		{name: "scheme", url: "http://example.com/b", wantErr: `"http"`},
		{name: "malformed", url: "s3://me dia%zz", wantErr: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.url, "/data", func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse(%q) = %+v, %v; want an error containing %q", tc.url, got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("parse(%q): error %q repeats the secret", tc.url, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tc.url, err)
			}
			if got != tc.want {
				t.Errorf("parse(%q) =\n %+v\nwant\n %+v", tc.url, got, tc.want)
			}
		})
	}
}

func TestParseNoDataDir(t *testing.T) {
	if _, err := parse("", "", func(string) string { return "" }); err == nil {
		t.Error("parse with no URL and no data directory succeeded")
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	s, err := Open(ctx, "", data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*dir.Store); !ok {
		t.Errorf("Open(\"\") = %T, want *dir.Store", s)
	}
	if _, err := s.Put(ctx, "files/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "blobs", "files", "x")); err != nil {
		t.Errorf("Open(\"\") does not keep blobs in the data directory: %v", err)
	}

	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer srv.Close()
	t.Setenv(EnvAccessKey, "")
	t.Setenv(EnvAWSAccessKey, "test")
	t.Setenv(EnvAWSSecretKey, "testtest")
	s, err = Open(ctx, "s3://herald?secure=false&region=us-east-1&endpoint="+strings.TrimPrefix(srv.URL, "http://"), data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*s3.Store); !ok {
		t.Errorf("Open(s3://…) = %T, want *s3.Store", s)
	}
	if _, err := s.Put(ctx, "files/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
}
