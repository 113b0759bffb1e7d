// Package dnstest runs a real DNS server, dnsmasq, for tests: on a free
// loopback port of its own (UDP and TCP), with no system configuration and no
// upstream, answering the A records a test gives it and NXDOMAIN for every
// other name. SetHosts changes the records while it runs and returns once the
// server answers with them; Stop and StartAgain take the server away and bring
// it back on the same port. Close stops the process (its whole process group)
// and removes the directory.
package dnstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/childproc"
)

// Options shape one server. The zero value finds dnsmasq (see Find) and
// gives every start 10s.
type Options struct {
	// Binary is the dnsmasq to run; empty means Find("").
	Binary string
	// StartTimeout bounds each start (Launch, StartAgain) and each SetHosts;
	// 0 means 10s.
	StartTimeout time.Duration
}

// Hosts maps a name to its IPv4 or IPv6 addresses.
type Hosts map[string][]string

// Server is one running dnsmasq.
type Server struct {
	// Addr is 127.0.0.1:PORT, where the server answers over UDP and TCP.
	Addr string
	// Dir holds the hosts file and the log.
	Dir string
	// HostsFile is the file dnsmasq reads its records from (--addn-hosts).
	HostsFile string
	// LogFile is dnsmasq's log, every query included.
	LogFile string

	opts   Options
	binary string

	mu    sync.Mutex
	hosts Hosts
	proc  *childproc.Process // nil while stopped
}

// Find returns the path of binary (empty: "dnsmasq"). Debian installs it in
// /usr/sbin, which is not on every user's PATH, so that is tried after PATH.
func Find(binary string) (string, error) {
	if binary == "" {
		binary = "dnsmasq"
	}
	path, err := exec.LookPath(binary)
	if err == nil || strings.ContainsRune(binary, os.PathSeparator) {
		return path, err
	}
	if p, sbinErr := exec.LookPath(filepath.Join("/usr/sbin", binary)); sbinErr == nil {
		return p, nil
	}
	return "", err
}

// Launch creates a directory, writes hosts to it and starts dnsmasq on a free
// loopback port, returning once every name of hosts resolves through it. ctx
// bounds the start only. On error nothing is left running and the error
// carries the tail of dnsmasq's log.
func Launch(ctx context.Context, hosts Hosts, opts Options) (*Server, error) {
	path, err := Find(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	dir, err := os.MkdirTemp("", "dnstest-")
	if err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	s := &Server{
		Dir:       dir,
		HostsFile: filepath.Join(dir, "hosts"),
		LogFile:   filepath.Join(dir, "dnsmasq.log"),
		opts:      opts,
		binary:    path,
	}
	if err := s.launch(ctx, hosts); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) launch(ctx context.Context, hosts Hosts) error {
	if err := s.writeHosts(hosts); err != nil {
		return err
	}
	// A port found free can be taken by someone else before dnsmasq binds
	// it; a start that failed for that reason is tried again on another.
	var err error
	for range 3 {
		var ports []int
		if ports, err = childproc.FreePorts(1); err != nil {
			return fmt.Errorf("dnstest: %w", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		err = s.start(ctx)
		if err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return err
}

func (s *Server) timeout() time.Duration {
	if s.opts.StartTimeout > 0 {
		return s.opts.StartTimeout
	}
	return 10 * time.Second
}

// writeHosts replaces the hosts file in one rename, so that dnsmasq never
// reads half of it.
func (s *Server) writeHosts(hosts Hosts) error {
	names := make([]string, 0, len(hosts))
	for name, addrs := range hosts {
		if name == "" || strings.ContainsAny(name, " \t\n#") {
			return fmt.Errorf("dnstest: bad host name %q", name)
		}
		for _, a := range addrs {
			if net.ParseIP(a) == nil {
				return fmt.Errorf("dnstest: %s: bad address %q", name, a)
			}
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, name := range names {
		for _, a := range hosts[name] {
			fmt.Fprintf(&b, "%s %s\n", a, name)
		}
	}
	tmp := s.HostsFile + ".tmp"
	// Readable by all: dnsmasq started by a user other than root may still
	// change to another one (its --user).
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("dnstest: %w", err)
	}
	if err := os.Rename(tmp, s.HostsFile); err != nil {
		return fmt.Errorf("dnstest: %w", err)
	}
	copied := make(Hosts, len(hosts))
	for name, addrs := range hosts {
		copied[name] = slices.Clone(addrs)
	}
	s.mu.Lock()
	// A name no longer in the file must stop resolving: kept with no
	// address, waitAnswers checks that it is not found.
	for name := range s.hosts {
		if _, ok := copied[name]; !ok {
			copied[name] = nil
		}
	}
	s.hosts = copied
	s.mu.Unlock()
	return nil
}

func (s *Server) args() []string {
	port := s.Addr[strings.LastIndexByte(s.Addr, ':')+1:]
	args := []string{
		"--conf-file=/dev/null", // no /etc/dnsmasq.conf
		"--no-resolv",           // no /etc/resolv.conf, no upstream
		"--no-hosts",            // no /etc/hosts
		"--addn-hosts=" + s.HostsFile,
		"--local=/#/", // answer every name from the hosts file alone: NXDOMAIN, not REFUSED
		"--keep-in-foreground",
		"--port=" + port,
		"--listen-address=127.0.0.1",
		"--bind-interfaces",
		"--pid-file=", // none
		"--log-facility=-",
		"--log-queries",
	}
	// Started as root, dnsmasq changes to "nobody", who may not reach the
	// hosts file (a private TMPDIR) when SIGHUP makes it read it again.
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return args
}

var errAddrInUse = errors.New("address in use")

// start runs dnsmasq and waits until it answers with the hosts file.
func (s *Server) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()

	cmd := exec.Command(s.binary, s.args()...)
	cmd.Dir = s.Dir
	proc, err := childproc.Start(cmd, s.LogFile)
	if err != nil {
		return fmt.Errorf("dnstest: %w", err)
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()

	if err := s.waitAnswers(ctx, proc.Exited()); err != nil {
		_ = s.Stop()
		tail := s.LogTail(4096)
		if strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return fmt.Errorf("dnstest: dnsmasq did not answer: %w\n--- dnsmasq log tail (%s) ---\n%s", err, s.LogFile, tail)
	}
	return nil
}

// waitAnswers asks the server for every name it should know until each
// resolves to its addresses (or, with none, is not found).
func (s *Server) waitAnswers(ctx context.Context, exited <-chan struct{}) error {
	s.mu.Lock()
	want := make(Hosts, len(s.hosts))
	for name, addrs := range s.hosts {
		want[name] = sortedIPs(addrs)
	}
	s.mu.Unlock()
	r := s.Resolver()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		last := s.answers(ctx, r, want)
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("dnsmasq exited (last answer: %w)", last)
		case <-ctx.Done():
			return fmt.Errorf("%w (last answer: %w)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func (s *Server) answers(ctx context.Context, r *net.Resolver, want Hosts) error {
	for name, addrs := range want {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		got, err := r.LookupHost(qctx, name)
		cancel()
		if len(addrs) == 0 {
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				continue
			}
			return fmt.Errorf("%s: want not found, got %v, %v", name, got, err)
		}
		if err != nil {
			return err
		}
		if got = sortedIPs(got); !slices.Equal(got, addrs) {
			return fmt.Errorf("%s: want %v, got %v", name, addrs, got)
		}
	}
	return nil
}

func sortedIPs(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a
		if ip := net.ParseIP(a); ip != nil {
			out[i] = ip.String()
		}
	}
	sort.Strings(out)
	return out
}

// Resolver returns Go's own resolver sending every query, over UDP or TCP as
// it chooses, to this server: real DNS messages on the wire, no cgo, no
// /etc/resolv.conf nameserver.
func (s *Server) Resolver() *net.Resolver {
	addr := s.Addr
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// SetHosts replaces the records and makes dnsmasq read them again (SIGHUP),
// returning once the server answers with them: names left out are then not
// found. With the server stopped it only rewrites the file, which the next
// start reads.
func (s *Server) SetHosts(ctx context.Context, hosts Hosts) error {
	if err := s.writeHosts(hosts); err != nil {
		return err
	}
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("dnstest: reload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	if err := s.waitAnswers(ctx, proc.Exited()); err != nil {
		return fmt.Errorf("dnstest: dnsmasq did not answer with the new records: %w\n--- dnsmasq log tail (%s) ---\n%s", err, s.LogFile, s.LogTail(4096))
	}
	return nil
}

// Stop ends dnsmasq (SIGTERM, then SIGKILL after 5s) and keeps the
// directory: queries are refused until StartAgain. Stopping a stopped server
// does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	proc := s.proc
	s.proc = nil
	s.mu.Unlock()
	if proc != nil {
		proc.Stop(5 * time.Second)
	}
	return nil
}

// StartAgain starts a stopped server on the same port with the current
// records.
func (s *Server) StartAgain(ctx context.Context) error {
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		return errors.New("dnstest: server is running")
	}
	return s.start(ctx)
}

// Close stops dnsmasq and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	if rmErr := os.RemoveAll(s.Dir); err == nil {
		err = rmErr
	}
	return err
}

// LogTail returns up to the last n bytes of dnsmasq's log, from a line's
// start.
func (s *Server) LogTail(n int) string { return childproc.LogTail(s.LogFile, n) }
