package sumserver

// This file reproduces the parts of Express 5 (router 2, path-to-regexp 8,
// parseurl, finalhandler 2, encodeurl 2, escape-html, etag, fresh 2) and of
// Node's HTTP parser that decide what the practice's app answers. The
// differential test against the real Express app is the judge of it.

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// nodeMethods are the methods Node's HTTP parser accepts (http.METHODS of
// Node 20); it answers any other with a bare 400 and closes the connection.
var nodeMethods = map[string]bool{
	"ACL": true, "BIND": true, "CHECKOUT": true, "CONNECT": true, "COPY": true,
	"DELETE": true, "GET": true, "HEAD": true, "LINK": true, "LOCK": true,
	"M-SEARCH": true, "MERGE": true, "MKACTIVITY": true, "MKCALENDAR": true,
	"MKCOL": true, "MOVE": true, "NOTIFY": true, "OPTIONS": true, "PATCH": true,
	"POST": true, "PROPFIND": true, "PROPPATCH": true, "PURGE": true, "PUT": true,
	"QUERY": true, "REBIND": true, "REPORT": true, "SEARCH": true, "SOURCE": true,
	"SUBSCRIBE": true, "TRACE": true, "UNBIND": true, "UNLINK": true,
	"UNLOCK": true, "UNSUBSCRIBE": true,
}

// nodeAcceptsTarget reports whether Node's HTTP parser accepts a request
// target: it takes only printable ASCII (0x21-0x7E) and a target that is
// origin-form ("/..."), "*", or absolute-form with a letters-only scheme.
func nodeAcceptsTarget(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return false
		}
	}
	if t[0] == '/' || t == "*" {
		return true
	}
	i := 0
	for i < len(t) && isAlpha(t[i]) {
		i++
	}
	return i > 0 && strings.HasPrefix(t[i:], "://")
}

func isAlpha(c byte) bool { c |= 0x20; return c >= 'a' && c <= 'z' }

// pathname is the pathname Express routes on (parseurl): the part of the
// request target before '?' for a plain "/..." target, and Node's legacy
// url.parse otherwise. ok is false when url.parse would give no pathname.
func pathname(target string) (p string, ok bool) {
	if target != "" && target[0] == '/' && !strings.ContainsRune(target, '#') {
		p, _, _ = strings.Cut(target, "?")
		return p, true
	}
	return legacyURLPathname(target)
}

// legacyURLPathname is the pathname of Node's url.parse(s) for the targets
// Node's parser lets through: backslashes before '?' or '#' become '/', an
// authority after "scheme://" (or "//user@host") is skipped, some characters
// are escaped ({ } | \ ^ ` ' " < > and white space), then the hash and the
// query are cut off.
func legacyURLPathname(s string) (string, bool) {
	// Backslashes before the query or hash become slashes.
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = strings.ReplaceAll(s[:i], `\`, "/") + s[i:]
	} else {
		s = strings.ReplaceAll(s, `\`, "/")
	}
	rest := s
	proto := ""
	if i := protoLen(s); i > 0 {
		proto = strings.ToLower(s[:i-1])
		rest = s[i:]
	}
	hasHost := false
	if (proto != "" || userAtHost(rest)) && strings.HasPrefix(rest, "//") && proto != "javascript" {
		rest = rest[2:]
		hasHost = true
	}
	if hasHost || (proto != "" && !slashedProtocol(proto) && proto != "javascript") {
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		rest = rest[end:]
	}
	rest = autoEscape(rest)
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" {
		if hasHost && slashedProtocol(proto) {
			return "/", true
		}
		return "", false
	}
	return rest, true
}

// protoLen is the length of a leading /^[a-z0-9.+-]+:/i, or 0.
func protoLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c), c >= '0' && c <= '9', c == '.', c == '+', c == '-':
		case c == ':' && i > 0:
			return i + 1
		default:
			return 0
		}
	}
	return 0
}

// userAtHost is url.parse's /^\/\/[^@/]+@[^@/]+/.
func userAtHost(s string) bool {
	if !strings.HasPrefix(s, "//") {
		return false
	}
	s = s[2:]
	at := strings.IndexAny(s, "@/")
	return at > 0 && s[at] == '@' && at+1 < len(s) && s[at+1] != '@' && s[at+1] != '/'
}

func slashedProtocol(p string) bool {
	switch p {
	case "http", "https", "ftp", "gopher", "file":
		return true
	}
	return false
}

// autoEscape is url.parse's escaping of characters that browsers escape.
func autoEscape(s string) string {
	if !strings.ContainsAny(s, "\t\n\r \"'<>\\^`{|}") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\t', '\n', '\r', ' ', '"', '\'', '<', '>', '\\', '^', '`', '{', '|', '}':
			b.WriteString(pctEncode(c))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

const upperHex = "0123456789ABCDEF"

func pctEncode(c byte) string { return string([]byte{'%', upperHex[c>>4], upperHex[c&15]}) }

// route is what the app's two routes make of a request path.
type route int

const (
	routeNone route = iota
	routeRoot       // app.get("/")
	routeAPI        // app.get("/api/:n")
)

// matchRoute matches p against "/" and then "/api/:n" as Express 5 does:
// case-insensitively, with one optional trailing slash, :n being one
// non-empty segment (returned still percent-encoded).
func matchRoute(p string) (route, string) {
	if p == "/" || p == "//" {
		return routeRoot, ""
	}
	const prefix = "/api/"
	if len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)], prefix) {
		seg := strings.TrimSuffix(p[len(prefix):], "/")
		if seg != "" && !strings.Contains(seg, "/") {
			return routeAPI, seg
		}
	}
	return routeNone, ""
}

var errURI = errors.New("URI malformed")

// decodeURIComponent is JavaScript's decodeURIComponent: every %XX is
// decoded and the bytes must form valid UTF-8 (no overlong forms, no
// surrogates), else it fails as JS throws a URIError.
func decodeURIComponent(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] != '%' {
			b = append(b, s[i])
			i++
			continue
		}
		// One UTF-8 sequence of %XX escapes.
		c, ok := unhex2(s, i)
		if !ok {
			return "", errURI
		}
		i += 3
		n := utf8Len(c)
		if n == 0 {
			return "", errURI
		}
		seq := []byte{c}
		for k := 1; k < n; k++ {
			if i >= len(s) || s[i] != '%' {
				return "", errURI
			}
			cc, ok := unhex2(s, i)
			if !ok || cc&0xC0 != 0x80 {
				return "", errURI
			}
			seq = append(seq, cc)
			i += 3
		}
		if n > 1 && !utf8.Valid(seq) {
			return "", errURI
		}
		b = append(b, seq...)
	}
	return string(b), nil
}

// utf8Len is the length of the UTF-8 sequence led by c, or 0 if c cannot
// lead one.
func utf8Len(c byte) int {
	switch {
	case c < 0x80:
		return 1
	case c&0xE0 == 0xC0:
		return 2
	case c&0xF0 == 0xE0:
		return 3
	case c&0xF8 == 0xF0:
		return 4
	}
	return 0
}

func unhex2(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	h, ok1 := unhex(s[i+1])
	l, ok2 := unhex(s[i+2])
	return h<<4 | l, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// encodeURL is the encodeurl package: characters that are not allowed in a
// URL are percent-encoded, existing valid escapes are kept, a '%' that does
// not start one becomes %25.
func encodeURL(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if _, ok := unhex2(s, i); ok {
				b.WriteByte(c)
			} else {
				b.WriteString("%25")
			}
		case urlAllowed(c):
			b.WriteByte(c)
		default:
			b.WriteString(pctEncode(c))
		}
	}
	return b.String()
}

// urlAllowed is encodeurl's [\x21\x23-\x3B\x3D\x3F-\x5F\x61-\x7A\x7C\x7E].
func urlAllowed(c byte) bool {
	return c == 0x21 || (c >= 0x23 && c <= 0x3B) || c == 0x3D || (c >= 0x3F && c <= 0x5F) ||
		(c >= 0x61 && c <= 0x7A) || c == 0x7C || c == 0x7E
}

// escapeHTML is the escape-html package.
func escapeHTML(s string) string {
	return htmlReplacer.Replace(s)
}

var htmlReplacer = strings.NewReplacer(`"`, "&quot;", "&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;")

// errorPage is finalhandler's HTML error document.
func errorPage(message string) string {
	body := escapeHTML(message)
	body = strings.ReplaceAll(body, "\n", "<br>")
	body = strings.ReplaceAll(body, "  ", " &nbsp;")
	return "<!DOCTYPE html>\n" +
		"<html lang=\"en\">\n" +
		"<head>\n" +
		"<meta charset=\"utf-8\">\n" +
		"<title>Error</title>\n" +
		"</head>\n" +
		"<body>\n" +
		"<pre>" + body + "</pre>\n" +
		"</body>\n" +
		"</html>\n"
}

// ETag is the weak ETag Express sets on a body (the etag package):
// W/"<length in hex>-<base64 SHA-1, first 27 characters>".
func ETag(body []byte) string {
	sum := sha1.Sum(body)
	h := base64.StdEncoding.EncodeToString(sum[:])[:27]
	return `W/"` + strconv.FormatInt(int64(len(body)), 16) + "-" + h + `"`
}

// fresh is the fresh package as Express uses it: only If-None-Match can make
// a response fresh (the app sets no Last-Modified), Cache-Control: no-cache
// makes it stale.
func fresh(ifNoneMatch, ifModifiedSince, cacheControl, etag string) bool {
	if ifModifiedSince == "" && ifNoneMatch == "" {
		return false
	}
	if cacheControl != "" && hasNoCache(cacheControl) {
		return false
	}
	if ifNoneMatch == "" {
		// If-Modified-Since without a Last-Modified is stale.
		return false
	}
	if ifNoneMatch == "*" {
		return true
	}
	for _, m := range parseTokenList(ifNoneMatch) {
		if m == etag || "W/"+m == etag || m == "W/"+etag {
			return true
		}
	}
	return false
}

// parseTokenList is fresh's parser of a comma-separated list: spaces around
// a token are dropped, inner spaces kept, empty tokens kept.
func parseTokenList(s string) []string {
	var list []string
	start, end := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if start == end {
				start, end = i+1, i+1
			}
		case ',':
			list = append(list, s[start:end])
			start, end = i+1, i+1
		default:
			end = i + 1
		}
	}
	return append(list, s[start:end])
}

// hasNoCache is /(?:^|,)\s*?no-cache\s*?(?:,|$)/ on a header value (Node
// decodes header bytes as Latin-1, so 0xA0 is JS white space too).
func hasNoCache(v string) bool {
	for i := 0; i <= len(v); i++ {
		if i != 0 && v[i-1] != ',' {
			continue
		}
		j := i
		for j < len(v) && isHeaderJSSpace(v[j]) {
			j++
		}
		if !strings.HasPrefix(v[j:], "no-cache") {
			continue
		}
		j += len("no-cache")
		for j < len(v) && isHeaderJSSpace(v[j]) {
			j++
		}
		if j == len(v) || v[j] == ',' {
			return true
		}
	}
	return false
}

func isHeaderJSSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xA0
}
