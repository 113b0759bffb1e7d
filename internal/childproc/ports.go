package childproc

import (
	"fmt"
	"net"
	"strconv"
)

// FreePorts returns n distinct loopback ports that were free for both TCP and
// UDP when it looked. Someone else may take one before the child binds it, so
// a launcher should try again on new ports when the child reports the address
// in use.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	// Each TCP listener stays open until the end so that no port comes twice.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var last error
	for tries := 0; len(ports) < n; tries++ {
		if tries == 10*n {
			return nil, fmt.Errorf("no port free for both TCP and UDP: %w", last)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			last = err
			continue
		}
		u.Close()
		ports = append(ports, port)
	}
	return ports, nil
}
