package deploytest

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
)

// dockerfile is the repository's Dockerfile parsed by BuildKit's own parser.
type dockerfile struct {
	stages []instructions.Stage
	args   map[string]string // ARG defaults, global and per stage
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	ast, err := parser.Parse(bytes.NewReader(raw))
	require.NoError(t, err)
	stages, meta, err := instructions.Parse(ast.AST, nil)
	require.NoError(t, err)
	df := dockerfile{stages: stages, args: map[string]string{}}
	addArgs := func(a instructions.ArgCommand) {
		for _, kv := range a.Args {
			if kv.Value != nil {
				df.args[kv.Key] = *kv.Value
			}
		}
	}
	for _, a := range meta {
		addArgs(a)
	}
	for _, s := range stages {
		for _, c := range s.Commands {
			if a, ok := c.(*instructions.ArgCommand); ok {
				addArgs(*a)
			}
		}
	}
	return df
}

func commands[T any](s instructions.Stage) []*T {
	var out []*T
	for _, c := range s.Commands {
		if v, ok := any(c).(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestDockerfile checks what can be checked without a Docker engine: the
// stages and their base images, the non-root user, that the entrypoint is the
// binary the build stage makes, and the build line itself, run here.
func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	require.Len(t, df.stages, 2)
	build, final := df.stages[0], df.stages[1]
	require.Equal(t, "build", build.Name)
	require.Regexp(t, `^golang:\$\{GO_VERSION\}-`, build.BaseName)
	require.Regexp(t, `^gcr\.io/distroless/static-debian[0-9]+:nonroot$`, final.BaseName)

	runs := commands[instructions.RunCommand](build)
	var buildLine string
	for _, r := range runs {
		if line := strings.Join(r.CmdLine, " "); strings.Contains(line, "go build") {
			require.Empty(t, buildLine, "more than one go build line")
			buildLine = line
		}
	}
	require.NotEmpty(t, buildLine)
	out := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(buildLine)
	require.NotNil(t, out, "the build line names no output: %s", buildLine)
	binaryInBuild := out[1]

	users := commands[instructions.UserCommand](final)
	require.Len(t, users, 1)
	user := users[0].User

	t.Run("Go of the build stage is at least go.mod's", func(t *testing.T) {
		gomod, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
		require.NoError(t, err)
		m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(gomod))
		require.NotNil(t, m)
		img := regexp.MustCompile(`^(\d+)\.(\d+)\.\d+$`).FindStringSubmatch(df.args["GO_VERSION"])
		require.NotNil(t, img, "GO_VERSION %q is not a pinned x.y.z", df.args["GO_VERSION"])
		num := func(s string) int { n, _ := strconv.Atoi(s); return n }
		need := num(m[1])*1000 + num(m[2])
		have := num(img[1])*1000 + num(img[2])
		require.GreaterOrEqual(t, have, need, "golang:%s cannot build a go %s.%s module", df.args["GO_VERSION"], m[1], m[2])
	})

	t.Run("runs as a numeric non-root user", func(t *testing.T) {
		require.Regexp(t, `^[0-9]+(:[0-9]+)?$`, user, "Kubernetes' runAsNonRoot can only check a numeric user")
		uid, _, _ := strings.Cut(user, ":")
		require.NotEqual(t, "0", uid)
		require.Equal(t, "65532", uid, "distroless's nonroot user, and the chart's runAsUser")
	})

	t.Run("entrypoint is the binary the build stage makes", func(t *testing.T) {
		eps := commands[instructions.EntrypointCommand](final)
		require.Len(t, eps, 1)
		require.False(t, eps[0].PrependShell, "exec form: distroless has no shell")
		require.Len(t, eps[0].CmdLine, 1)
		var copied bool
		for _, c := range commands[instructions.CopyCommand](final) {
			if c.From == build.Name && c.DestPath == eps[0].CmdLine[0] {
				require.Equal(t, []string{binaryInBuild}, c.SourcePaths)
				copied = true
			}
		}
		require.True(t, copied, "no COPY --from=%s puts %s at %s", build.Name, binaryInBuild, eps[0].CmdLine[0])

		cmds := commands[instructions.CmdCommand](final)
		require.Len(t, cmds, 1)
		require.Equal(t, []string{"--config", configDir + "/config.yaml"}, cmds[0].CmdLine, "the chart mounts the config there")
	})

	t.Run("buffer directory belongs to the user", func(t *testing.T) {
		var found bool
		for _, c := range commands[instructions.CopyCommand](final) {
			if c.DestPath == bufferDir {
				require.Equal(t, user, c.Chown)
				found = true
			}
		}
		require.True(t, found, "no COPY makes %s", bufferDir)
	})

	t.Run("the build line builds a static, stamped binary", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(repoRoot(t), "cmd", "traefik-influxdb-bridge", "main.go")); err != nil {
			requireReal(t, "cmd/traefik-influxdb-bridge is not in this checkout yet")
		}
		dir := t.TempDir()
		// The line as written, with its output moved from the image's /out to
		// a temporary directory; the ARGs reach it as environment variables,
		// as they reach a RUN.
		line := strings.ReplaceAll(buildLine, filepath.Dir(binaryInBuild)+"/", dir+"/")
		const version = "v9.8.7-deploytest"
		env := []string{"VERSION=" + version, "TARGETOS=" + runtime.GOOS, "TARGETARCH=" + runtime.GOARCH}
		run(t, repoRoot(t), env, "sh", "-c", line)
		bin := filepath.Join(dir, filepath.Base(binaryInBuild))

		f, err := elf.Open(bin)
		require.NoError(t, err)
		defer f.Close()
		for _, p := range f.Progs {
			require.NotEqual(t, elf.PT_INTERP, p.Type, "dynamically linked: it needs a loader distroless/static does not have")
		}
		libs, err := f.ImportedLibraries()
		require.NoError(t, err)
		require.Empty(t, libs)

		info, err := buildinfo.ReadFile(bin)
		require.NoError(t, err)
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		require.Equal(t, "0", settings["CGO_ENABLED"])
		require.Equal(t, "true", settings["-trimpath"])
		// With -trimpath Go leaves -ldflags out of the build info; the stamp
		// is checked through --version below.

		raw, err := os.ReadFile(bin)
		require.NoError(t, err)
		require.NotContains(t, string(raw), repoRoot(t), "-trimpath leaves no build paths in the binary")

		got := run(t, dir, nil, bin, "--version")
		require.Contains(t, string(got), version)
	})
}

// TestDockerignore checks that the build context keeps every file the binary
// is built from and leaves out the repository's history and other modules.
func TestDockerignore(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	excluded := func(path string) bool {
		t.Helper()
		m, err := pm.MatchesOrParentMatches(path)
		require.NoError(t, err)
		return m
	}

	tests := []struct {
		name, path string
		excluded   bool
	}{
		{name: "go.mod", path: "go.mod"},
		{name: "go.sum", path: "go.sum"},
		{name: "git history", path: ".git/HEAD", excluded: true},
		{name: "deploytest module", path: "deploytest/go.mod", excluded: true},
		{name: "e2e module", path: "e2e/go.mod", excluded: true},
		{name: "compose secrets", path: "examples/docker-compose/secrets/influxdb-password", excluded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.excluded, excluded(tt.path))
		})
	}

	t.Run("every source file of the binary", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(root, "cmd", "traefik-influxdb-bridge")); err != nil {
			requireReal(t, "cmd/traefik-influxdb-bridge is not in this checkout yet")
		}
		out := run(t, root, nil, "go", "list", "-deps",
			"-f", `{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
			"./cmd/traefik-influxdb-bridge")
		files := strings.Fields(string(out))
		require.NotEmpty(t, files)
		for _, file := range files {
			rel, err := filepath.Rel(root, file)
			require.NoError(t, err)
			require.False(t, excluded(filepath.ToSlash(rel)), ".dockerignore leaves out %s, which the binary is built from", rel)
		}
	})
}
