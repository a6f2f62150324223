package metadata_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sloworks/broker/metadata"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		raw       string
		allowHTTP bool
		ok        bool
	}{
		{"https://idp.example/metadata", false, true},
		{"http://idp.example/metadata", false, false},
		{"http://idp.example/metadata", true, true},
		{"HTTPS://idp.example/metadata", false, true},
		{"javascript:alert(1)", true, false},
		{"JavaScript://idp.example/%0aalert(1)", true, false},
		{"data:text/html,hi", true, false},
		{"file:///etc/passwd", true, false},
		{"/metadata", true, false},
		{"//idp.example/metadata", true, false},
		{"https:///metadata", false, false},
		{"https://user:pw@idp.example/metadata", false, false},
		{"", true, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/allowHTTP=%v", tt.raw, tt.allowHTTP), func(t *testing.T) {
			err := metadata.CheckURL(tt.raw, tt.allowHTTP)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckURL(%q, %v) = %v; want ok=%v", tt.raw, tt.allowHTTP, err, tt.ok)
			}
			if err != nil {
				wantRefusal(t, err, tt.raw)
			}
		})
	}
}

// countingServer serves body with status and counts the requests it gets.
func countingServer(t *testing.T, tls bool, status int, body []byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.WriteHeader(status)
		w.Write(body)
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestFetch(t *testing.T) {
	ctx := context.Background()
	doc := []byte(goodIdP(t, "https://idp.example", "https://idp.example/sso"))

	t.Run("200", func(t *testing.T) {
		srv, n := countingServer(t, true, http.StatusOK, doc)
		got, err := metadata.Fetch(ctx, srv.Client(), srv.URL+"/metadata", false)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, doc) || n.Load() != 1 {
			t.Errorf("Fetch = %d bytes after %d requests; want the %d served bytes after 1", len(got), n.Load(), len(doc))
		}
	})
	t.Run("body at the limit", func(t *testing.T) {
		body := bytes.Repeat([]byte(" "), metadata.MaxSize)
		srv, _ := countingServer(t, true, http.StatusOK, body)
		got, err := metadata.Fetch(ctx, srv.Client(), srv.URL, false)
		if err != nil || len(got) != metadata.MaxSize {
			t.Fatalf("Fetch = %d bytes, %v; want %d bytes", len(got), err, metadata.MaxSize)
		}
	})

	refusals := []struct {
		name        string
		status      int
		body        []byte
		unreachable bool
		want        []string
	}{
		{"404", http.StatusNotFound, []byte("not found"), true, []string{"HTTP 404"}},
		{"500", http.StatusInternalServerError, nil, true, []string{"HTTP 500"}},
		{"body over the limit", http.StatusOK, bytes.Repeat([]byte("x"), metadata.MaxSize+1), false, []string{"larger than", fmt.Sprint(metadata.MaxSize)}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := countingServer(t, true, tt.status, tt.body)
			got, err := metadata.Fetch(ctx, srv.Client(), srv.URL+"/md", false)
			wantRefusal(t, err, append(tt.want, srv.URL+"/md")...)
			var me *metadata.Error
			if errors.As(err, &me) && me.Unreachable != tt.unreachable {
				t.Errorf("Unreachable = %v; want %v", me.Unreachable, tt.unreachable)
			}
			if got != nil {
				t.Errorf("returned %d bytes along with the error", len(got))
			}
		})
	}

	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = metadata.Fetch(ctx, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/md", true)
		wantRefusal(t, err, addr)
		var me *metadata.Error
		if errors.As(err, &me) && !me.Unreachable {
			t.Errorf("Unreachable = false for a closed port: %v", err)
		}
	})

	t.Run("http without allowHTTP is refused before any request", func(t *testing.T) {
		srv, n := countingServer(t, false, http.StatusOK, doc)
		_, err := metadata.Fetch(ctx, srv.Client(), srv.URL+"/md", false)
		wantRefusal(t, err, "http://", "BROKER_ALLOW_HTTP")
		var me *metadata.Error
		if errors.As(err, &me) && me.Unreachable {
			t.Errorf("an http URL is reported as unreachable, not refused: %v", err)
		}
		if got := n.Load(); got != 0 {
			t.Errorf("server got %d requests; want none", got)
		}
	})

	t.Run("http with allowHTTP", func(t *testing.T) {
		srv, n := countingServer(t, false, http.StatusOK, doc)
		got, err := metadata.Fetch(ctx, srv.Client(), srv.URL+"/md", true)
		if err != nil || !bytes.Equal(got, doc) || n.Load() != 1 {
			t.Fatalf("Fetch = %d bytes, %v after %d requests", len(got), err, n.Load())
		}
	})

	for _, u := range []string{"javascript:alert(1)", "file:///etc/passwd", "/metadata", "https://user:pw@idp.example/md"} {
		t.Run("refused URL "+u, func(t *testing.T) {
			_, err := metadata.Fetch(ctx, http.DefaultClient, u, true)
			wantRefusal(t, err, u)
		})
	}

	// An https metadata URL that redirects to plain http must not be followed when http is not
	// allowed: the https requirement would otherwise be one redirect away from useless.
	t.Run("https redirecting to http without allowHTTP", func(t *testing.T) {
		plain, n := countingServer(t, false, http.StatusOK, doc)
		redir := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/md", http.StatusFound))
		t.Cleanup(redir.Close)
		got, err := metadata.Fetch(ctx, redir.Client(), redir.URL+"/md", false)
		if err == nil {
			t.Errorf("Fetch followed a redirect to %s and returned %d bytes; want a refusal", plain.URL, len(got))
		}
		if c := n.Load(); c != 0 {
			t.Errorf("the http server got %d requests; want none", c)
		}
	})

	t.Run("redirects within the rules are followed", func(t *testing.T) {
		target, n := countingServer(t, true, http.StatusOK, doc)
		redir := httptest.NewTLSServer(http.RedirectHandler(target.URL+"/md", http.StatusMovedPermanently))
		t.Cleanup(redir.Close)
		// Both test servers use the same httptest certificate, so one client trusts both.
		got, err := metadata.Fetch(ctx, redir.Client(), redir.URL+"/old", false)
		if err != nil || !bytes.Equal(got, doc) || n.Load() != 1 {
			t.Errorf("https → https: %d bytes, %v after %d requests", len(got), err, n.Load())
		}
		plain, n2 := countingServer(t, false, http.StatusOK, doc)
		redir2 := httptest.NewServer(http.RedirectHandler(plain.URL+"/md", http.StatusFound))
		t.Cleanup(redir2.Close)
		got, err = metadata.Fetch(ctx, redir2.Client(), redir2.URL+"/old", true)
		if err != nil || !bytes.Equal(got, doc) || n2.Load() != 1 {
			t.Errorf("http → http with allowHTTP: %d bytes, %v after %d requests", len(got), err, n2.Load())
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		block := make(chan struct{})
		// The handler waits for the test to end, never for the request's context: a server that
		// gave up early would answer an empty 200 and hide what Fetch does with its deadline.
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-block
		}))
		t.Cleanup(func() { close(block); srv.Close() })
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		start := time.Now()
		_, err := metadata.Fetch(cctx, srv.Client(), srv.URL, false)
		wantRefusal(t, err, srv.URL)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("Fetch ignored its context for %v", time.Since(start))
		}
	})
}
