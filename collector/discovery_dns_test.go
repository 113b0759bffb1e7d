package collector

import (
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/dnstest"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// dnsPod is one Traefik behind the headless Service: a loopback address of its
// own, a page with its own number of services, and the count of its scrapes.
type dnsPod struct {
	ip       string
	services int
	hits     atomic.Int64
}

// startDNSPods serves each pod's page on its address, all on one port, as the
// pods behind a headless Service listen on the port of the URL. The page's
// round is the number of scrapes served before, so its counters grow with
// every scrape. It returns the port.
func startDNSPods(t *testing.T, pods ...*dnsPod) string {
	t.Helper()
	ls := listenDNSPods(t, pods)
	for i, p := range pods {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			round := p.hits.Add(1) - 1
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write(traefikpage.Generate(p.services, int(round)))
		}))
		srv.Listener.Close()
		srv.Listener = ls[i]
		srv.Start()
		t.Cleanup(srv.Close)
	}
	_, port, err := net.SplitHostPort(ls[0].Addr().String())
	require.NoError(t, err)
	return port
}

func listenDNSPods(t *testing.T, pods []*dnsPod) []net.Listener {
	t.Helper()
	for range 10 {
		first, err := net.Listen("tcp", net.JoinHostPort(pods[0].ip, "0"))
		require.NoError(t, err)
		port := strconv.Itoa(first.Addr().(*net.TCPAddr).Port)
		ls := []net.Listener{first}
		for _, p := range pods[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(p.ip, port))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == len(pods) {
			return ls
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatal("no port free on every dnsPod's address")
	return nil
}

var (
	lpInstanceRE  = regexp.MustCompile(`,instance=([^, ]+)`)
	lpServiceRE   = regexp.MustCompile(`,service=([^, ]+)`)
	pageServiceRE = regexp.MustCompile(`service="([^"]+)"`)
)

// dnsRound is what one round of scrapes wrote, by instance tag.
type dnsRound map[string][]string

func linesByInstance(t *testing.T, lp string) dnsRound {
	t.Helper()
	out := dnsRound{}
	for line := range strings.Lines(lp) {
		m := lpInstanceRE.FindStringSubmatch(line)
		require.NotNil(t, m, "a line without an instance tag: %s", line)
		out[m[1]] = append(out[m[1]], line)
	}
	return out
}

func (s dnsRound) instances() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// services are the service tags of an instance's lines.
func (s dnsRound) services(instance string) []string {
	var out []string
	for _, line := range s[instance] {
		if m := lpServiceRE.FindStringSubmatch(line); m != nil && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// counters tells whether an instance's lines hold request counters, which the
// baseline (the first scrape of a target, with no state before it) has not.
func (s dnsRound) counters(instance string) bool {
	for _, line := range s[instance] {
		if strings.HasPrefix(line, "traefik.service.requests.total,") {
			return true
		}
	}
	return false
}

// pageServiceNames are the services a page of that many services names.
func pageServiceNames(n int) []string {
	var out []string
	for _, m := range pageServiceRE.FindAllSubmatch(traefikpage.Generate(n, 0), -1) {
		if s := string(m[1]); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestCollectorDNSRealServer follows a dns+http:// URL through a real DNS
// server: dnsmasq answers Go's own resolver (PreferGo, real DNS messages over
// loopback UDP/TCP) for a name whose records the test rewrites between
// scrapes, as the endpoints of a headless Service change. Each address is a
// target of its own: it is scraped while the name resolves to it, its lines
// carry its instance tag and its first scrape is a baseline of its own; an
// address that leaves DNS is no longer scraped; with the DNS server down the
// failed resolution is counted and logged once and the known addresses are
// still scraped, until it answers again.
func TestCollectorDNSRealServer(t *testing.T) {
	const name = "traefik-headless.ingress.test"
	a := &dnsPod{ip: "127.0.0.2", services: 1}
	b := &dnsPod{ip: "127.0.0.3", services: 2}
	c := &dnsPod{ip: "127.0.0.4", services: 3}
	if runtime.GOOS != "linux" {
		t.Skip("needs 127.0.0.2-4, which only Linux has on loopback without configuration")
	}
	dns := dnstest.Start(t, dnstest.Hosts{name: {a.ip, b.ip}})
	port := startDNSPods(t, a, b, c)

	url := "dns+http://" + net.JoinHostPort(name, port) + "/metrics"
	cfg := testConfig(url)
	cfg.Traefik.Timeout = 2 * time.Second
	rec := &appendRecorder{}
	col, logs := newTestCollector(t, cfg, rec)
	col.resolver = dns.Resolver()
	inst := func(p *dnsPod) string { return net.JoinHostPort(p.ip, port) }
	// requireHits checks how many scrapes a, b and c have served.
	requireHits := func(want [3]int64) {
		t.Helper()
		got := [3]int64{a.hits.Load(), b.hits.Load(), c.hits.Load()}
		require.Equal(t, want, got, "scrapes served by %s, %s and %s", a.ip, b.ip, c.ip)
	}
	dnsFailures := func() float64 { return col.m.scrapes.WithLabelValues(url, "dns").Value() }

	// round scrapes the source once, as one tick of Run, and returns what
	// it wrote by instance.
	now := t0
	round := func() (dnsRound, []error) {
		t.Helper()
		errs := col.scrapeSource(t.Context(), col.sources[0], now, nil)
		now = now.Add(cfg.Traefik.Interval)
		all, _, _ := rec.take()
		return linesByInstance(t, all), errs
	}
	// Each instance's lines name the services of its own page only.
	requireOwnLines := func(got dnsRound, pods ...*dnsPod) {
		t.Helper()
		want := make([]string, len(pods))
		for i, p := range pods {
			want[i] = inst(p)
		}
		slices.Sort(want)
		require.Equal(t, want, got.instances())
		for _, p := range pods {
			require.Equal(t, pageServiceNames(p.services), got.services(inst(p)), "services in the lines of %s", inst(p))
		}
	}

	// Two addresses: two targets, each a baseline at its first scrape.
	got, errs := round()
	require.Empty(t, errs)
	requireHits([3]int64{1, 1, 0})
	requireOwnLines(got, a, b)
	require.False(t, got.counters(inst(a)) || got.counters(inst(b)), "the first scrape is a baseline")
	got, errs = round()
	require.Empty(t, errs)
	requireHits([3]int64{2, 2, 0})
	requireOwnLines(got, a, b)
	require.True(t, got.counters(inst(a)) && got.counters(inst(b)), "the second scrape has increases")

	// b leaves DNS and c comes: c is scraped from the next tick, with a
	// baseline of its own beside a's increases; b is not scraped.
	require.NoError(t, dns.SetHosts(t.Context(), dnstest.Hosts{name: {a.ip, c.ip}}))
	got, errs = round()
	require.Empty(t, errs)
	requireHits([3]int64{3, 2, 1})
	requireOwnLines(got, a, c)
	require.True(t, got.counters(inst(a)), "a keeps its counter state")
	require.False(t, got.counters(inst(c)), "a new address starts with its own baseline")
	require.Contains(t, logs.String(), "target=http://"+inst(c)+"/metrics")
	got, errs = round()
	require.Empty(t, errs)
	requireHits([3]int64{4, 2, 2})
	requireOwnLines(got, a, c)
	require.True(t, got.counters(inst(c)))

	// The DNS server goes away: each tick's failed resolution is counted,
	// logged once, and the addresses known are still scraped.
	require.NoError(t, dns.Stop())
	for i := range 2 {
		got, errs = round()
		require.Len(t, errs, 1)
		require.ErrorContains(t, errs[0], name)
		require.Equal(t, float64(i+1), dnsFailures())
		requireHits([3]int64{int64(5 + i), 2, int64(3 + i)})
		requireOwnLines(got, a, c)
	}
	require.Equal(t, 1, strings.Count(logs.String(), "cannot resolve"), "logs:\n%s", logs)

	// It answers again, with b alone: b is scraped again and, remembered for
	// traefik.series_ttl, continues its increases instead of a baseline.
	require.NoError(t, dns.SetHosts(t.Context(), dnstest.Hosts{name: {b.ip}}))
	require.NoError(t, dns.StartAgain(t.Context()))
	got, errs = round()
	require.Empty(t, errs)
	requireHits([3]int64{6, 3, 4})
	requireOwnLines(got, b)
	require.True(t, got.counters(inst(b)), "b's counter state was kept while it was out of DNS")
	require.Equal(t, float64(2), dnsFailures())
	require.Contains(t, logs.String(), "resolves again")
}
