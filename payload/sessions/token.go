package sessions

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

var b64 = base64.RawURLEncoding

// NewToken returns a random opaque token: 32 bytes, base64url (43 chars).
func NewToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return b64.EncodeToString(b[:])
}

// ParseBearer returns the token of an Authorization header "Bearer <token>"
// (the scheme in any case, one or more spaces), or false when the header is
// missing, of another scheme, or the token is empty, longer than MaxToken or
// has a character outside base64url and '.'.
func ParseBearer(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" || len(tok) > MaxToken {
		return "", false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", false
		}
	}
	return tok, true
}

// errBadName and errBadBody are the 400s of POST /login.
var (
	errBadBody = errors.New(`body must be a JSON object {"name": "<1 to 64 printable characters>"}`)
	errBadName = errors.New("name must be 1 to 64 bytes of printable UTF-8")
)

// ParseLogin reads POST /login's body: a JSON object whose "name" is a
// string of 1 to MaxName bytes of printable UTF-8 (other members ignored).
func ParseLogin(body []byte) (string, error) {
	if len(body) > MaxBody {
		return "", errBadBody
	}
	var v struct {
		Name *string `json:"name"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&v); err != nil || v.Name == nil {
		return "", errBadBody
	}
	if _, err := d.Token(); err != io.EOF {
		return "", errBadBody // trailing data
	}
	if !ValidName(*v.Name) {
		return "", errBadName
	}
	return *v.Name, nil
}

// ValidName: 1 to MaxName bytes of valid UTF-8 without control characters.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxName || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// Signer makes and checks stateless tokens: base64url(JSON {"n": name,
// "e": expiry in unix seconds, "r": random}) "." base64url(HMAC-SHA256 of
// the first part under the key).
type Signer struct {
	key []byte
}

// MinKey is the shortest key accepted, in bytes.
const MinKey = 16

// NewSigner returns a signer for key (at least MinKey bytes).
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKey {
		return nil, fmt.Errorf("session key of %d bytes: want at least %d", len(key), MinKey)
	}
	return &Signer{key: bytes.Clone(key)}, nil
}

// LoadKey reads a key file (at most 4 KiB; surrounding white space is
// trimmed, so a file written by `head -c 32 /dev/urandom | base64` works).
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<10+1))
	if err != nil {
		return nil, fmt.Errorf("session key %s: %w", path, err)
	}
	if len(b) > 4<<10 {
		return nil, fmt.Errorf("session key %s: larger than 4 KiB", path)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinKey {
		return nil, fmt.Errorf("session key %s: %d bytes, want at least %d", path, len(b), MinKey)
	}
	return b, nil
}

type claims struct {
	N string `json:"n"`
	E int64  `json:"e"`
	R string `json:"r"`
}

// Sign returns a token for name valid until exp (unix seconds).
func (s *Signer) Sign(name string, exp int64) string {
	var r [9]byte
	_, _ = rand.Read(r[:])
	p, _ := json.Marshal(claims{N: name, E: exp, R: b64.EncodeToString(r[:])})
	body := b64.EncodeToString(p)
	return body + "." + b64.EncodeToString(s.mac(body))
}

func (s *Signer) mac(body string) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(body))
	return h.Sum(nil)
}

// Verify returns the name and expiry of a token this key signed; false for
// a bad signature or a malformed token (it does not check the expiry).
func (s *Signer) Verify(tok string) (name string, exp int64, ok bool) {
	if len(tok) > MaxToken {
		return "", 0, false
	}
	body, sig, found := strings.Cut(tok, ".")
	if !found {
		return "", 0, false
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(body)) {
		return "", 0, false
	}
	p, err := b64.DecodeString(body)
	if err != nil {
		return "", 0, false
	}
	var c claims
	if json.Unmarshal(p, &c) != nil || !ValidName(c.N) {
		return "", 0, false
	}
	return c.N, c.E, true
}

// shortID names a token in statistics without giving it away: the first 8
// hex digits of its SHA-256.
func shortID(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:4])
}
