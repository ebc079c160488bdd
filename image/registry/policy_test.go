package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeDNS makes the client dial 127.0.0.1 for names, so tests can talk to
// hosts that are not loopback by name ("registry.test", "10.1.2.3")
// without leaving the machine. pool, when set, is the trusted CA.
func fakeDNS(pool *x509.CertPool, names ...string) func(*http.Transport) {
	return func(tr *http.Transport) {
		tr.Proxy = nil
		d := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && slices.Contains(names, host) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		}
		if pool != nil {
			tr.TLSClientConfig.RootCAs = pool
		}
	}
}

// testCert is a self-signed certificate for registry.test and 10.1.2.3.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hull registry test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"registry.test"},
		IPAddresses:           []net.IP{net.ParseIP("10.1.2.3")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// counting wraps a registry handler and counts requests, and those that
// arrived without TLS.
type counting struct {
	all, plain atomic.Int64
}

func (c *counting) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.all.Add(1)
		if r.TLS == nil {
			c.plain.Add(1)
		}
		next.ServeHTTP(w, r)
	})
}

// newTLSRegistry serves a registry over TLS with cert on 127.0.0.1 and
// returns its port and a raw plain server's testRegistry for seeding.
func newTLSRegistry(t *testing.T, cert tls.Certificate, cnt *counting) (port string, seed *testRegistry) {
	t.Helper()
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	raw := httptest.NewServer(h)
	t.Cleanup(raw.Close)
	srv := httptest.NewUnstartedServer(cnt.wrap(h))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u.Port(), &testRegistry{seedHost: strings.TrimPrefix(raw.URL, "http://")}
}

func TestPlainHTTPOnlyForInsecureOrLoopback(t *testing.T) {
	cnt := &counting{}
	tr := newTestRegistry(t, cnt.wrap)
	img := randomImage(t, types.DockerManifestSchema2)
	tr.seed(t, "x/y:1", img)
	_, port, _ := net.SplitHostPort(tr.host)
	names := fakeDNS(nil, "registry.test", "10.1.2.3")

	for _, tc := range []struct {
		host     string
		insecure []string
		ok       bool
	}{
		{"registry.test:" + port, nil, false},
		// go-containerregistry's own heuristics would use plain HTTP here.
		{"10.1.2.3:" + port, nil, false},
		{"registry.test:" + port, []string{"registry.test:" + port}, true},
		{"registry.test:" + port, []string{"registry.test"}, true},
		{"registry.test:" + port, []string{"other.test:" + port, "registry.test:1"}, false},
		{"10.1.2.3:" + port, []string{"10.0.0.0/8"}, true},
		{"127.0.0.1:" + port, nil, true},
		{"localhost:" + port, nil, true},
	} {
		before := cnt.all.Load()
		c := newClient(Config{Insecure: tc.insecure}, names)
		_, err := c.Resolve(testCtx(t), mustParse(t, tc.host+"/x/y:1"))
		if tc.ok != (err == nil) {
			t.Errorf("%s insecure=%v: err = %v, want ok=%v", tc.host, tc.insecure, err, tc.ok)
		}
		if !tc.ok {
			// Only a TLS handshake was attempted: no HTTP request arrived.
			if n := cnt.all.Load() - before; n != 0 {
				t.Errorf("%s insecure=%v: %d plain HTTP requests reached the server", tc.host, tc.insecure, n)
			}
			assertContains(t, err, tc.host)
		}
	}
}

func TestRedirectToPlainHTTPIsRefused(t *testing.T) {
	target := &counting{}
	elsewhere := newTestRegistry(t, target.wrap)
	_, port, _ := net.SplitHostPort(elsewhere.host)
	img := randomImage(t, types.DockerManifestSchema2)
	d, _ := layerBytes(t, img, 0)
	tr := newTestRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
				http.Redirect(w, r, "http://registry.test:"+port+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	tr.seed(t, "x/y:1", img)
	c := newClient(Config{}, fakeDNS(nil, "registry.test"))
	_, _, err := c.FetchBlob(testCtx(t), tr.ref(t, "x/y:1"), d, 0)
	if !errors.Is(err, ErrPlainHTTP) {
		t.Fatalf("err = %v, want ErrPlainHTTP", err)
	}
	if n := target.all.Load(); n != 0 {
		t.Errorf("%d requests reached the redirect target", n)
	}
}

func TestTLSRegistryIsVerifiedUnlessInsecure(t *testing.T) {
	cert, pool := testCert(t)
	cnt := &counting{}
	port, seed := newTLSRegistry(t, cert, cnt)
	img := randomImage(t, types.OCIManifestSchema1)
	seed.seed(t, "x/y:1", img)
	name := "registry.test:" + port

	// Trusted CA: works, over TLS only.
	c := newClient(Config{}, fakeDNS(pool, "registry.test", "10.1.2.3"))
	res, err := c.Resolve(testCtx(t), mustParse(t, name+"/x/y:1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.ManifestDesc.Digest != digestOfT(t, img) {
		t.Error("wrong manifest")
	}
	// Push to an RFC 1918 address: go-containerregistry's URLs say http
	// there; the push must still go over verified TLS.
	other := randomImage(t, types.DockerManifestSchema2)
	if err := c.Push(testCtx(t), mustParse(t, "10.1.2.3:"+port+"/x/pushed:2"), other); err != nil {
		t.Fatalf("push over TLS to 10.1.2.3: %v", err)
	}
	res, err = c.Resolve(testCtx(t), mustParse(t, "10.1.2.3:"+port+"/x/pushed:2"))
	if err != nil || res.ManifestDesc.Digest != digestOfT(t, other) {
		t.Fatalf("resolve pushed image: %v", err)
	}
	if n := cnt.plain.Load(); n != 0 {
		t.Errorf("%d requests without TLS", n)
	}

	// Unknown CA: refused unless the registry is insecure, and then still TLS.
	c = newClient(Config{}, fakeDNS(nil, "registry.test"))
	_, err = c.Resolve(testCtx(t), mustParse(t, name+"/x/y:1"))
	assertContains(t, err, "certificate", name)
	c = newClient(Config{Insecure: []string{name}}, fakeDNS(nil, "registry.test"))
	if _, err := c.Resolve(testCtx(t), mustParse(t, name+"/x/y:1")); err != nil {
		t.Errorf("insecure registry with an unverifiable certificate: %v", err)
	}
	if n := cnt.plain.Load(); n != 0 {
		t.Errorf("%d requests without TLS", n)
	}
}

func TestCheckRedirectRefusesPublicToInternal(t *testing.T) {
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"https://registry.example.com/v2/", "https://cdn.example.net/blob", true},
		{"https://registry.example.com/v2/", "http://169.254.169.254/latest/meta-data", false},
		{"https://registry.example.com/v2/", "https://10.0.0.1/x", false},
		{"https://registry.example.com/v2/", "https://127.0.0.1:8080/x", false},
		{"http://127.0.0.1:5000/v2/", "http://127.0.0.1:5001/x", true},
		{"https://10.0.0.5/v2/", "https://10.0.0.6/x", true},
	} {
		err := checkRedirect(req(tc.to), []*http.Request{req(tc.from)})
		if tc.ok != (err == nil) {
			t.Errorf("%s -> %s: %v, want ok=%v", tc.from, tc.to, err, tc.ok)
		}
	}
}
