// Package traefikpage generates Prometheus text expositions shaped like the
// /metrics page of a Traefik v3 with many services, for benchmarks and for
// tests that need a large, realistic, changing page.
//
// The families, HELP and TYPE lines, label names, label order, sample order
// and number formatting are those of a real Traefik v3.6.12 (see
// /work/shared/fixtures and collector/testdata); traefik_service_retries_total,
// which that scrape did not show, follows Traefik's source. Every value is a
// function of (services, round): counters never decrease from one round to the
// next, histograms are consistent (buckets cumulative, _count equal to the
// +Inf bucket), and round 0 has every request counter at zero. Some series never grow,
// as real idle series do.
//
// A page has Samples(services) samples: SamplesPerService per service plus
// FixedSamples (662), so 20, 100 and 500 services give 13,602, 65,362 and
// 324,162 samples (1.8, 8.6 and 43 MB).
package traefikpage

import (
	"strconv"
)

// Sample counts of a page; see Samples.
const (
	// SamplesPerService: 32 (code, method) pairs on the router and on the
	// service, each a histogram (5 buckets, _sum, _count) and three counters,
	// plus 2+2 TLS counters, 2 server_up gauges and 1 retries counter.
	SamplesPerService = 2*32*(7+3) + 4 + 2 + 1
	// FixedSamples: the entrypoint families (2 entrypoints x 32 pairs x 10
	// samples, 2 TLS counters), 4 open_connections, config reload and TLS cert
	// gauges, and the go_*/process_* lines.
	FixedSamples = 2*32*10 + 2 + 4 + 3 + goProcessSamples
)

const goProcessSamples = 5 + 2 + 6 // the GC summary and six single lines

// Samples returns the number of samples of a page with that many services.
func Samples(services int) int { return services*SamplesPerService + FixedSamples }

// Traefik's default duration buckets, in seconds, as its page writes them.
var buckets = [...]string{"0.1", "0.3", "1.2", "5", "+Inf"}

// Latency profiles: the share (per mille) of requests at or below each bucket
// bound, and the mean duration in seconds.
var profiles = [...]struct {
	cum  [len(buckets)]uint64
	mean float64
}{
	{[...]uint64{900, 980, 1000, 1000, 1000}, 0.031},
	{[...]uint64{500, 800, 950, 990, 1000}, 0.127},
	{[...]uint64{100, 400, 800, 950, 1000}, 0.452},
	{[...]uint64{0, 0, 200, 700, 1000}, 2.13},
}

// Status codes every service answers (16), sorted as Traefik's page sorts
// them (as strings).
var codes = [...]string{"200", "201", "204", "301", "302", "304", "400", "401", "403", "404", "405", "429", "500", "502", "503", "504"}

// Methods in the order the page sorts them. Each service answers GET and one
// other method, so each has 16 x 2 = 32 (code, method) pairs.
var methods = [...]string{"DELETE", "EXTENSION_METHOD", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}

var otherMethods = [...]string{"POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "EXTENSION_METHOD"}

func hasMethod(svc int, m string) bool {
	return m == "GET" || m == otherMethods[svc%len(otherMethods)]
}

var entrypoints = [...]string{"web", "websecure"}

var tlsPairs = [...][2]string{ // cipher, version; sorted by cipher
	{"TLS_AES_128_GCM_SHA256", "1.3"},
	{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "1.2"},
}

// mix is a small integer hash that spreads series over rates and profiles.
func mix(xs ...uint64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, x := range xs {
		h ^= x + 0x9e3779b97f4a7c15 + h<<6 + h>>2
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	return h
}

// series is one (code, method, ...) combination: requests per round, latency
// profile, bytes per request.
type series struct {
	rate, reqBytes, respBytes uint64
	prof                      int
}

func newSeries(kind, svc uint64, code, method string) series {
	c, _ := strconv.ParseUint(code, 10, 64)
	h := mix(kind, svc, c, uint64(len(method))<<8|uint64(method[0]))
	s := series{rate: h % 41, prof: int(h>>8) % len(profiles), respBytes: 120 + (h>>16)%9000}
	if h%9 == 0 {
		s.rate = 0 // an idle series
	}
	switch method {
	case "POST", "PUT", "PATCH", "EXTENSION_METHOD":
		s.reqBytes = 20 + (h>>24)%3000
	}
	return s
}

type page struct {
	b     []byte
	round uint64
}

func (p *page) str(s ...string) {
	for _, x := range s {
		p.b = append(p.b, x...)
	}
}

// val writes a value the way client_golang does.
func (p *page) val(v float64) {
	p.b = append(p.b, ' ')
	p.b = strconv.AppendFloat(p.b, v, 'g', -1, 64)
	p.b = append(p.b, '\n')
}

func (p *page) head(name, typ, help string) {
	p.str("# HELP ", name, " ", help, "\n# TYPE ", name, " ", typ, "\n")
}

// histogram writes one histogram series; labels is the label text without
// braces, to which le is appended last as client_golang does.
func (p *page) histogram(name, labels string, s series) {
	n := p.round * s.rate
	prof := profiles[s.prof]
	for i, le := range buckets {
		p.str(name, "_bucket{", labels, `,le="`, le, `"}`)
		p.val(float64(n * prof.cum[i] / 1000))
	}
	p.str(name, "_sum{", labels, "}")
	p.val(float64(n) * prof.mean)
	p.str(name, "_count{", labels, "}")
	p.val(float64(n))
}

func (p *page) counter(name, labels string, v uint64) {
	p.str(name, "{", labels, "}")
	p.val(float64(v))
}

func svcName(i int) string    { return "app" + pad(i) + "-svc@file" }
func routerName(i int) string { return "app" + pad(i) + "@file" }

func pad(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// Generate returns the page of a Traefik serving that many services after
// round rounds of traffic.
func Generate(services int, round int) []byte {
	if services < 0 || round < 0 {
		panic("traefikpage: negative services or round")
	}
	p := &page{b: make([]byte, 0, 160*Samples(services)), round: uint64(round)}
	r := uint64(round)
	svcs := make([]string, services)
	routers := make([]string, services)
	for i := range svcs {
		svcs[i], routers[i] = svcName(i), routerName(i)
	}

	p.goProcess(r)

	p.head("traefik_config_last_reload_success", "gauge", "Last config reload success")
	p.str("traefik_config_last_reload_success")
	p.val(1.795594692e+09 + float64(r/10*60))
	p.head("traefik_config_reloads_total", "counter", "Config reloads")
	p.str("traefik_config_reloads_total")
	p.val(float64(1 + r/10))

	// Entrypoints: every code with GET and POST on both entrypoints.
	epSeries := func(code, ep, method string) series {
		return newSeries(1, uint64(len(ep)), code, method)
	}
	epLabels := func(code, ep, method string) string {
		return `code="` + code + `",entrypoint="` + ep + `",method="` + method + `",protocol="http"`
	}
	eachEP := func(f func(code, ep, method string)) {
		for _, code := range codes {
			for _, ep := range entrypoints {
				for _, m := range [...]string{"GET", "POST"} {
					f(code, ep, m)
				}
			}
		}
	}
	const epHelp = "handled by an entrypoint, partitioned by status code, protocol, and method."
	p.head("traefik_entrypoint_request_duration_seconds", "histogram",
		"How long it took to process the request on an entrypoint, partitioned by status code, protocol, and method.")
	eachEP(func(code, ep, m string) {
		p.histogram("traefik_entrypoint_request_duration_seconds", epLabels(code, ep, m), epSeries(code, ep, m))
	})
	p.head("traefik_entrypoint_requests_bytes_total", "counter", "The total size of requests in bytes "+epHelp)
	eachEP(func(code, ep, m string) {
		s := epSeries(code, ep, m)
		p.counter("traefik_entrypoint_requests_bytes_total", epLabels(code, ep, m), r*s.rate*s.reqBytes)
	})
	p.head("traefik_entrypoint_requests_tls_total", "counter",
		"How many HTTP requests with TLS processed on an entrypoint, partitioned by TLS Version and TLS cipher Used.")
	for i, t := range tlsPairs {
		p.counter("traefik_entrypoint_requests_tls_total",
			`entrypoint="websecure",tls_cipher="`+t[0]+`",tls_version="`+t[1]+`"`, r*uint64(9+40*i))
	}
	p.head("traefik_entrypoint_requests_total", "counter",
		"How many HTTP requests processed on an entrypoint, partitioned by status code, protocol, and method.")
	eachEP(func(code, ep, m string) {
		p.counter("traefik_entrypoint_requests_total", epLabels(code, ep, m), r*epSeries(code, ep, m).rate)
	})
	p.head("traefik_entrypoint_responses_bytes_total", "counter", "The total size of responses in bytes "+epHelp)
	eachEP(func(code, ep, m string) {
		s := epSeries(code, ep, m)
		p.counter("traefik_entrypoint_responses_bytes_total", epLabels(code, ep, m), r*s.rate*s.respBytes)
	})

	p.head("traefik_open_connections", "gauge", "How many open connections exist, by entryPoint and protocol")
	for i, ep := range [...]string{"metrics", "traefik", "web", "websecure"} {
		p.str(`traefik_open_connections{entrypoint="`, ep, `",protocol="TCP"}`)
		p.val(float64((r*7 + uint64(i)*3) % 40))
	}

	// Routers and services: one router per service, 32 pairs each, written
	// in the page's order (code, then method, then router/service name).
	each := func(f func(code, method string, svc int)) {
		for _, code := range codes {
			for _, m := range methods {
				for i := range services {
					if hasMethod(i, m) {
						f(code, m, i)
					}
				}
			}
		}
	}
	routerLabels := func(code, m string, i int) string {
		return `code="` + code + `",method="` + m + `",protocol="http",router="` + routers[i] + `",service="` + svcs[i] + `"`
	}
	svcLabels := func(code, m string, i int) string {
		return `code="` + code + `",method="` + m + `",protocol="http",service="` + svcs[i] + `"`
	}
	rs := func(code, m string, i int) series { return newSeries(2, uint64(i), code, m) }
	ss := func(code, m string, i int) series { return newSeries(3, uint64(i), code, m) }

	p.head("traefik_router_request_duration_seconds", "histogram",
		"How long it took to process the request on a router, partitioned by service, status code, protocol, and method.")
	each(func(code, m string, i int) {
		p.histogram("traefik_router_request_duration_seconds", routerLabels(code, m, i), rs(code, m, i))
	})
	p.head("traefik_router_requests_bytes_total", "counter",
		"The total size of requests in bytes handled by a router, partitioned by service, status code, protocol, and method.")
	each(func(code, m string, i int) {
		s := rs(code, m, i)
		p.counter("traefik_router_requests_bytes_total", routerLabels(code, m, i), r*s.rate*s.reqBytes)
	})
	p.head("traefik_router_requests_tls_total", "counter",
		"How many HTTP requests with TLS are processed on a router, partitioned by service, TLS Version, and TLS cipher Used.")
	for i := range services {
		for j, t := range tlsPairs {
			p.counter("traefik_router_requests_tls_total",
				`router="`+routers[i]+`",service="`+svcs[i]+`",tls_cipher="`+t[0]+`",tls_version="`+t[1]+`"`,
				r*(mix(4, uint64(i), uint64(j))%7))
		}
	}
	p.head("traefik_router_requests_total", "counter",
		"How many HTTP requests are processed on a router, partitioned by service, status code, protocol, and method.")
	each(func(code, m string, i int) {
		p.counter("traefik_router_requests_total", routerLabels(code, m, i), r*rs(code, m, i).rate)
	})
	p.head("traefik_router_responses_bytes_total", "counter",
		"The total size of responses in bytes handled by a router, partitioned by service, status code, protocol, and method.")
	each(func(code, m string, i int) {
		s := rs(code, m, i)
		p.counter("traefik_router_responses_bytes_total", routerLabels(code, m, i), r*s.rate*s.respBytes)
	})

	p.head("traefik_service_request_duration_seconds", "histogram",
		"How long it took to process the request on a service, partitioned by status code, protocol, and method.")
	each(func(code, m string, i int) {
		p.histogram("traefik_service_request_duration_seconds", svcLabels(code, m, i), ss(code, m, i))
	})
	p.head("traefik_service_requests_bytes_total", "counter",
		"The total size of requests in bytes received by a service, partitioned by status code, protocol, and method.")
	each(func(code, m string, i int) {
		s := ss(code, m, i)
		p.counter("traefik_service_requests_bytes_total", svcLabels(code, m, i), r*s.rate*s.reqBytes)
	})
	p.head("traefik_service_requests_tls_total", "counter",
		"How many HTTP requests with TLS processed on a service, partitioned by TLS version and TLS cipher.")
	for i := range services {
		for j, t := range tlsPairs {
			p.counter("traefik_service_requests_tls_total",
				`service="`+svcs[i]+`",tls_cipher="`+t[0]+`",tls_version="`+t[1]+`"`, r*(mix(5, uint64(i), uint64(j))%7))
		}
	}
	p.head("traefik_service_requests_total", "counter",
		"How many HTTP requests processed on a service, partitioned by status code, protocol, and method.")
	each(func(code, m string, i int) {
		p.counter("traefik_service_requests_total", svcLabels(code, m, i), r*ss(code, m, i).rate)
	})
	p.head("traefik_service_responses_bytes_total", "counter",
		"The total size of responses in bytes returned by a service, partitioned by status code, protocol, and method.")
	each(func(code, m string, i int) {
		s := ss(code, m, i)
		p.counter("traefik_service_responses_bytes_total", svcLabels(code, m, i), r*s.rate*s.respBytes)
	})
	p.head("traefik_service_retries_total", "counter", "How many request retries happened on a service.")
	for i := range services {
		p.counter("traefik_service_retries_total", `service="`+svcs[i]+`"`, r*(mix(6, uint64(i))%3))
	}
	p.head("traefik_service_server_up", "gauge", "service server is up, described by gauge value of 0 or 1.")
	for i := range services {
		for j := range 2 {
			up := 1.0
			if i%13 == 0 && j == 1 && round%4 >= 2 {
				up = 0 // one server of some services flaps
			}
			p.str(`traefik_service_server_up{service="`, svcs[i], `",url="http://10.0.`, strconv.Itoa(i/250), ".",
				strconv.Itoa(i%250+1), ":", strconv.Itoa(8080+j), `"}`)
			p.val(up)
		}
	}

	p.head("traefik_tls_certs_not_after", "gauge", "Certificate expiration timestamp")
	p.str(`traefik_tls_certs_not_after{cn="localhost",sans="localhost",serial="603435501592737309860915919971814410927046421641"}`)
	p.val(1.79818638e+09)
	return p.b
}

// goProcess writes a few of the go_* and process_* families of the page.
func (p *page) goProcess(r uint64) {
	p.head("go_gc_duration_seconds", "summary",
		"A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.")
	for i, q := range [...]string{"0", "0.25", "0.5", "0.75", "1"} {
		p.str(`go_gc_duration_seconds{quantile="`, q, `"}`)
		p.val(6.3184e-05 * float64(1+3*i))
	}
	p.str("go_gc_duration_seconds_sum")
	p.val(0.000317 * float64(5+2*r))
	p.str("go_gc_duration_seconds_count")
	p.val(float64(5 + 2*r))
	p.head("go_goroutines", "gauge", "Number of goroutines that currently exist.")
	p.str("go_goroutines")
	p.val(float64(34 + r%5))
	p.head("go_memstats_alloc_bytes_total", "counter",
		"Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.")
	p.str("go_memstats_alloc_bytes_total")
	p.val(float64(2.0563136e+07 + 1843212*r))
	p.head("go_threads", "gauge", "Number of OS threads created.")
	p.str("go_threads")
	p.val(9)
	p.head("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
	p.str("process_cpu_seconds_total")
	p.val(0.23 + 0.01*float64(r))
	p.head("process_open_fds", "gauge", "Number of open file descriptors.")
	p.str("process_open_fds")
	p.val(14)
	p.head("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
	p.str("process_start_time_seconds")
	p.val(1.79559469211e+09)
}
