package dnstest

import (
	"errors"
	"net"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func lookup(t *testing.T, s *Server, name string) ([]string, error) {
	t.Helper()
	addrs, err := s.Resolver().LookupHost(t.Context(), name)
	sort.Strings(addrs)
	return addrs, err
}

func notFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

func TestServer(t *testing.T) {
	s := Start(t, Hosts{"a.test": {"127.0.0.2"}})

	got, err := lookup(t, s, "a.test")
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.2"}, got)
	_, err = lookup(t, s, "other.test")
	require.True(t, notFound(err), "a name it was not given is NXDOMAIN: %v", err)

	require.NoError(t, s.SetHosts(t.Context(), Hosts{"b.test": {"127.0.0.4", "127.0.0.3"}}))
	got, err = lookup(t, s, "b.test")
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.3", "127.0.0.4"}, got)
	_, err = lookup(t, s, "a.test")
	require.True(t, notFound(err), "a name left out is gone: %v", err)

	require.NoError(t, s.Stop())
	_, err = lookup(t, s, "b.test")
	require.Error(t, err)
	require.False(t, notFound(err), "a stopped server is an error, not an answer: %v", err)

	addr := s.Addr
	require.NoError(t, s.StartAgain(t.Context()))
	require.Equal(t, addr, s.Addr)
	got, err = lookup(t, s, "b.test")
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.3", "127.0.0.4"}, got)
}

func TestSetHostsRefusesBadRecords(t *testing.T) {
	s := &Server{HostsFile: t.TempDir() + "/hosts"}
	require.ErrorContains(t, s.writeHosts(Hosts{"a.test": {"not-an-ip"}}), "bad address")
	require.ErrorContains(t, s.writeHosts(Hosts{"a b": {"127.0.0.2"}}), "bad host name")
}
