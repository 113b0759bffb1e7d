package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the command once per test run, stamped with a known version.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tib-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "traefik-influxdb-bridge")
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(goTool, "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	require.NoError(t, buildErr, "go build")
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

const secretPassword = "pa55-Never-Print-Me"

func TestBinaryExitCodes(t *testing.T) {
	valid := "influxdb:\n  url: https://127.0.0.1:8086\n"
	tests := []struct {
		name       string
		args       []string
		file       string
		env        []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "version", args: []string{"--version"}, wantCode: 0, wantStdout: "traefik-influxdb-bridge v9.8.7-test\n"},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStderr: "--check-config"},
		{name: "valid config", args: []string{"--check-config"}, file: valid, wantCode: 0, wantStdout: "url: https://127.0.0.1:8086"},
		{name: "unknown key", args: []string{"--check-config"}, file: "influxdb:\n  pasword: x\n", wantCode: 2, wantStderr: `config: unknown key "influxdb.pasword"`},
		{name: "unknown key when running", file: "influxdb:\n  pasword: x\n", wantCode: 2, wantStderr: `config: unknown key "influxdb.pasword"`},
		{name: "bad size from env", args: []string{"--check-config"}, env: []string{"TIB_BUFFER_MAX_BYTES=many"}, wantCode: 2, wantStderr: `config: buffer.max_bytes: invalid size "many"`},
		{name: "invalid value", args: []string{"--check-config", "--schema=graphite"}, wantCode: 2, wantStderr: "config: schema: must be one of"},
		{name: "unknown flag", args: []string{"--bogus"}, wantCode: 2, wantStderr: "unknown flag: --bogus"},
		{name: "stray argument", args: []string{"config.yaml"}, wantCode: 2, wantStderr: `unexpected argument "config.yaml"`},
		{name: "missing CA file when running", file: "traefik:\n  tls:\n    ca_file: /nonexistent/ca.pem\n", wantCode: 2, wantStderr: "config: traefik.tls: "},
		{name: "missing file", args: []string{"--check-config", "--config", "/nonexistent/c.yaml"}, wantCode: 2, wantStderr: "/nonexistent/c.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, "c.yaml", tt.file))
			}
			cmd := exec.Command(binary(t), args...)
			cmd.Env = append(cleanEnviron(), tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.wantCode, code, "stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
			if tt.wantStdout != "" {
				require.Contains(t, stdout.String(), tt.wantStdout)
			}
			if tt.wantStderr != "" {
				require.Contains(t, stderr.String(), tt.wantStderr)
			}
		})
	}
}

// cleanEnviron is the test process's environment without TIB_* variables.
func cleanEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix+"_") {
			out = append(out, kv)
		}
	}
	return out
}

func TestCheckConfigMasksSecrets(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
	}{
		{name: "influxdb password from env", env: map[string]string{"TIB_INFLUXDB_PASSWORD": secretPassword}},
		{name: "influxdb password in file", file: "influxdb:\n  username: u\n  password: " + secretPassword + "\n"},
		{name: "influxdb password file", file: "influxdb:\n  password_file: PWFILE\n"},
		{name: "traefik password", file: "traefik:\n  username: u\n  password: " + secretPassword + "\n"},
		{name: "traefik bearer token", env: map[string]string{"TIB_TRAEFIK_BEARER_TOKEN": secretPassword}},
		{name: "authorization header", file: "traefik:\n  headers:\n    Authorization: Basic " + secretPassword + "\n"},
		{name: "password of the wrong type", file: "influxdb:\n  password: [" + secretPassword + ", x]\n"},
		{name: "bad config after the password", file: "influxdb:\n  password: " + secretPassword + "\n  gzip: maybe\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := []string{"--check-config"}
			if tt.file != "" {
				pw := writeFile(t, "pw", secretPassword+"\n")
				args = append(args, "--config", writeFile(t, "c.yaml", strings.ReplaceAll(tt.file, "PWFILE", pw)))
			}
			var stdout, stderr bytes.Buffer
			run(t.Context(), args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			require.NotEmpty(t, out)
			require.NotContains(t, out, secretPassword)
			if stderr.Len() == 0 {
				require.Contains(t, stdout.String(), "<redacted>")
			}
		})
	}
}

func TestBinaryExitsOneWhenItCannotRun(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	cmd := exec.Command(binary(t), "--listen", taken.Addr().String())
	cmd.Env = cleanEnviron()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr: %s", &stderr)
	require.Equal(t, exitFailure, ee.ExitCode())
	require.Contains(t, stderr.String(), "listen: ")
	require.Contains(t, stderr.String(), "address already in use")
}
