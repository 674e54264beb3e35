package sumserver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
)

// Go's HTTP server answers some request targets itself, before any handler
// runs, with its own plain-text 400: a malformed percent escape ("/api/%zz")
// and control bytes. Express answers the first with its HTML "Bad Request"
// page, and Node rejects any byte outside printable ASCII with a bare 400.
// WrapListener's connections rewrite such request lines, keeping their
// length, so that the handler sees them and answers as Express does:
//   - a '%' not followed by two hex digits becomes 0xFF (markPercent), which
//     the handler turns back into '%';
//   - a target byte Node refuses (outside 0x21-0x7E) becomes 0xFE
//     (markRefused), which makes the handler answer Node's bare 400.
//
//   - "OPTIONS * HTTP/1.1" becomes "OPTIONS /\xfd* HTTP/1.1" (starTarget)
//     because Go's server answers OPTIONS * itself.
//
// Only lines that start a message and look like "METHOD SP target SP
// HTTP/x.y" are touched; a body line that looks like one is rewritten too,
// which is harmless as the app never reads bodies (all rewrites keep the
// length but the OPTIONS * one).

const (
	markPercent = 0xFF
	markRefused = 0xFE
	// maxRequestLine is the longest request line held back to be rewritten;
	// longer ones pass as they are (Go answers them 431 anyway).
	maxRequestLine = 32 << 10
)

type rewrittenKey struct{}

// WrapListener returns ln with connections whose request lines are
// rewritten so that the handler can answer malformed targets exactly as
// Express does (servers built by NewServer recognise these connections).
// Serving on an unwrapped listener works too; malformed escapes then get
// Go's own plain-text 400 instead of Express's HTML page.
func WrapListener(ln net.Listener) net.Listener { return &listener{ln} }

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &rewriteConn{Conn: c, lineStart: true}, nil
}

// connContext marks the contexts of requests that came through WrapListener.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.(*rewriteConn); ok {
		return context.WithValue(ctx, rewrittenKey{}, true)
	}
	return ctx
}

type rewriteConn struct {
	net.Conn
	in        []byte // read from the connection, not yet processed
	out       []byte // processed, ready for the server
	lineStart bool   // in[0] starts a line
	err       error  // the connection's read error (not a timeout): no more input
	buf       [4096]byte
}

func (c *rewriteConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		c.process(c.err != nil)
		if len(c.out) > 0 {
			break
		}
		if c.err != nil {
			return 0, c.err
		}
		n, err := c.Conn.Read(c.buf[:])
		c.in = append(c.in, c.buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A deadline, often set by the server to stop its background
				// read: not the end of the connection.
				c.process(false)
				if len(c.out) > 0 {
					break
				}
				return 0, err
			}
			c.err = err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
	}
	return n, nil
}

// process moves what it can from in to out; final means no more input.
func (c *rewriteConn) process(final bool) {
	for len(c.in) > 0 {
		if !c.lineStart {
			nl := bytes.IndexByte(c.in, '\n')
			if nl < 0 {
				c.emit(len(c.in))
				return
			}
			c.emit(nl + 1)
			c.lineStart = true
			continue
		}
		switch looksLikeRequestLine(c.in) {
		case 0: // undecided: wait for more
			if !final {
				return
			}
			c.lineStart = false
		case -1:
			c.lineStart = false
		case 1:
			nl := bytes.IndexByte(c.in, '\n')
			if nl < 0 {
				if !final && len(c.in) < maxRequestLine {
					return
				}
				c.lineStart = false
				continue
			}
			if isOptionsStar(c.in[:nl]) {
				// Go answers OPTIONS * itself (200, empty); Express says 404.
				c.in = append([]byte("OPTIONS "+starTarget), c.in[len("OPTIONS *"):]...)
				nl += len(starTarget) - 1
			} else {
				rewriteRequestLine(c.in[:nl])
			}
			c.emit(nl + 1)
		}
	}
}

func (c *rewriteConn) emit(n int) {
	c.out = append(c.out, c.in[:n]...)
	c.in = c.in[n:]
	if len(c.in) == 0 {
		c.in = nil
	}
}

// starTarget stands for the request target "*" of OPTIONS: Go's server
// would answer "OPTIONS *" itself.
const starTarget = "/\xfd*"

func isOptionsStar(line []byte) bool {
	line = bytes.TrimSuffix(line, []byte("\r"))
	return bytes.HasPrefix(line, []byte("OPTIONS * HTTP/")) && len(line) == len("OPTIONS * HTTP/1.1")
}

// isTokenChar reports whether c may be in an HTTP token (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	return isAlpha(c) || (c >= '0' && c <= '9') || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// looksLikeRequestLine: 1 when b starts with a method token and a space,
// -1 when it cannot, 0 when more bytes are needed to tell.
func looksLikeRequestLine(b []byte) int {
	for i, ch := range b {
		switch {
		case ch == ' ' && i > 0:
			return 1
		case isTokenChar(ch):
			if i >= 32 {
				return -1
			}
		default:
			return -1
		}
	}
	return 0
}

// rewriteRequestLine rewrites the target of "METHOD SP target SP HTTP/x.y"
// in place (see markPercent and markRefused).
func rewriteRequestLine(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	first := bytes.IndexByte(line, ' ')
	last := bytes.LastIndexByte(line, ' ')
	if first < 0 || last <= first || !bytes.HasPrefix(line[last+1:], []byte("HTTP/")) {
		return
	}
	t := line[first+1 : last]
	for i, ch := range t {
		if ch < 0x21 || ch > 0x7e {
			t[i] = markRefused
		}
	}
	for i, ch := range t {
		if ch == '%' && (i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2])) {
			t[i] = markPercent
		}
	}
}

func isHex(c byte) bool { _, ok := unhex(c); return ok }

// requestTarget is the request target as the client sent it, undoing the
// rewriting of WrapListener's connections; ok is false when Node would
// have refused it.
func requestTarget(ctx context.Context, uri string) (string, bool) {
	if ctx.Value(rewrittenKey{}) == nil {
		return uri, nodeAcceptsTarget(uri)
	}
	if uri == starTarget {
		return "*", true
	}
	if bytes.IndexByte([]byte(uri), markRefused) >= 0 {
		return "", false
	}
	b := []byte(uri)
	for i, ch := range b {
		if ch == markPercent {
			b[i] = '%'
		}
	}
	t := string(b)
	return t, nodeAcceptsTarget(t)
}
