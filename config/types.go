package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Size is a byte count that reads and prints as "256MiB", "4MB" or "1024".
type Size uint64

// Binary and decimal units accepted by Size.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

var sizeUnits = []struct {
	suffix string
	mult   Size
}{
	// Longest suffixes first so "MiB" is not read as "B".
	{"kib", KiB}, {"mib", MiB}, {"gib", GiB},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", KiB}, {"m", MiB}, {"g", GiB},
	{"b", 1},
}

// ParseSize reads a size such as "256MiB", "4MB", "512k" or "1048576".
func ParseSize(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := Size(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || t == "" {
		return 0, fmt.Errorf("invalid size %q (want a number with an optional unit: B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	v := n * float64(mult)
	if v > 1<<62 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(v), nil
}

// UnmarshalText lets viper/mapstructure and YAML decode "256MiB".
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// String prints the size in the largest binary unit that divides it.
func (s Size) String() string {
	switch {
	case s != 0 && s%GiB == 0:
		return fmt.Sprintf("%dGiB", s/GiB)
	case s != 0 && s%MiB == 0:
		return fmt.Sprintf("%dMiB", s/MiB)
	case s != 0 && s%KiB == 0:
		return fmt.Sprintf("%dKiB", s/KiB)
	}
	return strconv.FormatUint(uint64(s), 10) + "B"
}

// MarshalYAML prints the size as in the config file.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// Secret is a string that never prints: fmt, slog and YAML show "<redacted>".
// Use string(s) where the value itself is needed.
type Secret string

const redacted = "<redacted>"

func (s Secret) masked() Secret {
	if s == "" {
		return ""
	}
	return redacted
}

func (s Secret) String() string               { return string(s.masked()) }
func (s Secret) GoString() string             { return strconv.Quote(s.String()) }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(s.String()) }
func (s Secret) MarshalYAML() (any, error)    { return s.String(), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
