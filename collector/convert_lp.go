package collector

import (
	"strconv"
	"unicode/utf8"
)

// Line-protocol escaping, written by hand rather than with lineprotocol.Encoder:
// the encoder checks every key and value again, takes strings (so []byte
// labels need conversions) and keeps a sticky error, while the converter has
// already checked what it writes. TestLineProtocolEscaping decodes our output
// with lineprotocol.Decoder to keep the two in agreement.
//
// Rules (InfluxDB 1.x models/points.go and line-protocol/v2 agree on them):
//   - measurement: ',' and ' ' are escaped with a backslash;
//   - tag keys and values: ',', '=' and ' ' are escaped with a backslash;
//     any other backslash is literal, so "a\,b" is written "a\\,b" and reads
//     back as "a\,b";
//   - a value that ends in a backslash cannot be written: the backslash would
//     escape the ',' or ' ' that follows it. Neither can a value holding a
//     newline or another control character (a newline ends the line; the
//     other parsers reject them), nor invalid UTF-8. Such samples are skipped
//     and counted as "invalid_label".

// Byte classes for escaping.
const (
	clsPlain  = 0
	clsEscape = 1 // ',' '=' ' ' in tags; ',' ' ' in measurements
	clsBad    = 2 // control characters
	clsHigh   = 3 // bytes >= 0x80: check UTF-8
)

var tagClass, measClass = func() (t, m [256]uint8) {
	for i := 0; i < 0x20; i++ {
		t[i], m[i] = clsBad, clsBad
	}
	t[0x7f], m[0x7f] = clsBad, clsBad
	for i := 0x80; i < 0x100; i++ {
		t[i], m[i] = clsHigh, clsHigh
	}
	t[','], t['='], t[' '] = clsEscape, clsEscape, clsEscape
	m[','], m[' '] = clsEscape, clsEscape
	return t, m
}()

// appendEscaped appends s escaped with class table cls. ok is false if s
// cannot be represented (see above); dst is then returned with garbage after
// its original length, which the caller truncates.
func appendEscaped(dst, s []byte, cls *[256]uint8) (_ []byte, ok bool) {
	// Almost every name and value needs no escaping: scan for the first
	// byte that does before paying for the general loop.
	first := 0
	for first < len(s) && cls[s[first]] == clsPlain {
		first++
	}
	if first == len(s) {
		dst = append(dst, s...)
		return dst, len(s) == 0 || s[len(s)-1] != '\\'
	}
	high := false
	dst = append(dst, s[:first]...)
	start := first
	for i := first; i < len(s); i++ {
		switch cls[s[i]] {
		case clsPlain:
			continue
		case clsEscape:
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', s[i])
			start = i + 1
		case clsBad:
			return dst, false
		case clsHigh:
			high = true
		}
	}
	dst = append(dst, s[start:]...)
	if s[len(s)-1] == '\\' {
		return dst, false
	}
	if high && !utf8.Valid(s) {
		return dst, false
	}
	return dst, true
}

// appendFloat writes a float field value as line-protocol/v2 does: shortest
// representation, never an integer suffix, so the field stays a float.
func appendFloat(dst []byte, v float64) []byte {
	// Most values written are whole numbers (counts, their increases,
	// bucket counts), and for whole numbers under 1e6 in magnitude the
	// shortest 'g' form is the integer's digits: strconv.AppendInt writes
	// them for a fraction of the cost. Zero goes the long way, for -0.
	if i := int64(v); float64(i) == v && i != 0 && i > -1e6 && i < 1e6 {
		return strconv.AppendInt(dst, i, 10)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}
