package influxtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is a throw-away certificate authority with one server and one client
// certificate, all written as PEM files in dir.
type pki struct {
	caFile, certFile, keyFile     string
	clientCertFile, clientKeyFile string
	ca                            *x509.Certificate
	caKey                         *ecdsa.PrivateKey
}

func newPKI(dir string) (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "influxtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &pki{
		caFile:         filepath.Join(dir, "ca.pem"),
		certFile:       filepath.Join(dir, "server.pem"),
		keyFile:        filepath.Join(dir, "server-key.pem"),
		clientCertFile: filepath.Join(dir, "client.pem"),
		clientKeyFile:  filepath.Join(dir, "client-key.pem"),
		ca:             ca,
		caKey:          caKey,
	}
	if err := writePEM(p.caFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	server := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if err := p.issue(server, p.certFile, p.keyFile); err != nil {
		return nil, err
	}
	client := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "influxtest client"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := p.issue(client, p.clientCertFile, p.clientKeyFile); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) issue(tmpl *x509.Certificate, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return fmt.Errorf("issue %q: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyFile, "EC PRIVATE KEY", keyDER)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// WriteOtherCA writes to path the certificate of a fresh CA that signed
// nothing an influxtest server presents: a client trusting only it must fail
// the TLS handshake.
func WriteOtherCA(path string) error {
	tmp, err := os.MkdirTemp("", "influxtest-otherca-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := newPKI(tmp)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p.caFile)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// WriteServerPKI writes a fresh CA and a server certificate for localhost,
// 127.0.0.1 and ::1 as PEM files in dir, for a stand-in that must be reached
// the way InfluxDB is: over HTTPS, trusted through a CA file.
func WriteServerPKI(dir string) (caFile, certFile, keyFile string, err error) {
	p, err := newPKI(dir)
	if err != nil {
		return "", "", "", err
	}
	return p.caFile, p.certFile, p.keyFile, nil
}
