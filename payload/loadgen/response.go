package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errProtocol marks a response that is not valid HTTP/1.x; it is counted as
// a "protocol" error.
var errProtocol = errors.New("malformed http response")

// protocolError wraps errProtocol with what was wrong.
type protocolError struct{ what string }

func (e *protocolError) Error() string { return "malformed http response: " + e.what }
func (e *protocolError) Unwrap() error { return errProtocol }

func badResponse(what string) error { return &protocolError{what} }

// maxHeaderLines bounds the number of header lines of one response, so that
// a broken server cannot keep a worker reading forever.
const maxHeaderLines = 256

// readResponse reads one HTTP/1.x response from br and discards its body. It
// returns the status code and whether the connection must be closed after it
// (Connection: close, HTTP/1.0 without keep-alive, or a body delimited by the
// end of the connection). head says the request was HEAD: no body follows.
// It allocates nothing: lines are read in place from br's buffer.
func readResponse(br *bufio.Reader, head bool) (status int, mustClose bool, err error) {
	for {
		status, mustClose, err = readOne(br, head)
		// A 1xx interim answer (100 Continue, 103 Early Hints) is followed by
		// the real one; 101 Switching Protocols is final.
		if err != nil || status >= 200 || status == 101 {
			return status, mustClose, err
		}
	}
}

func readOne(br *bufio.Reader, head bool) (status int, mustClose bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return 0, true, err
	}
	// "HTTP/1.1 200 OK": version, space, three digits, then space or end.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, true, badResponse("bad status line")
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, true, badResponse("bad status code")
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, true, badResponse("bad status code")
	}
	http10 := line[7] == '0'
	mustClose = http10
	contentLength := int64(-1)
	chunked := false
	for n := 0; ; n++ {
		if n == maxHeaderLines {
			return status, true, badResponse("too many header lines")
		}
		line, err = readLine(br)
		if err != nil {
			return status, true, unexpectedEOF(err)
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return status, true, badResponse("bad header line")
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch len(name) {
		case len("content-length"):
			if !asciiEqualFold(name, "content-length") {
				continue
			}
			v, ok := parseDecimal(value)
			if !ok || (contentLength >= 0 && v != contentLength) {
				return status, true, badResponse("bad content-length")
			}
			contentLength = v
		case len("transfer-encoding"):
			if asciiEqualFold(name, "transfer-encoding") {
				chunked = asciiContainsFold(value, "chunked")
			}
		case len("connection"):
			if asciiEqualFold(name, "connection") {
				if asciiContainsFold(value, "close") {
					mustClose = true
				} else if http10 && asciiContainsFold(value, "keep-alive") {
					mustClose = false
				}
			}
		}
	}
	switch {
	case status < 200 || status == 204 || status == 304 || head:
		return status, mustClose, nil
	case chunked:
		return status, mustClose, discardChunked(br)
	case contentLength >= 0:
		if _, err := br.Discard(int(contentLength)); err != nil {
			return status, true, unexpectedEOF(err)
		}
		return status, mustClose, nil
	default:
		// No length: the body runs to the end of the connection.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return status, true, err
		}
		return status, true, nil
	}
}

// discardChunked reads and drops a chunked body and its trailer.
func discardChunked(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return unexpectedEOF(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || len(line) > 15 {
			return badResponse("bad chunk size")
		}
		var size int64
		for _, c := range line {
			var d byte
			switch {
			case c >= '0' && c <= '9':
				d = c - '0'
			case c >= 'a' && c <= 'f':
				d = c - 'a' + 10
			case c >= 'A' && c <= 'F':
				d = c - 'A' + 10
			default:
				return badResponse("bad chunk size")
			}
			size = size<<4 | int64(d)
		}
		if size == 0 {
			// Trailer lines, then an empty line.
			for n := 0; ; n++ {
				if n == maxHeaderLines {
					return badResponse("too many trailer lines")
				}
				line, err := readLine(br)
				if err != nil {
					return unexpectedEOF(err)
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(size)); err != nil {
			return unexpectedEOF(err)
		}
		line, err = readLine(br)
		if err != nil {
			return unexpectedEOF(err)
		}
		if len(line) != 0 {
			return badResponse("chunk not followed by crlf")
		}
	}
}

// readLine returns the next line without its "\n" or "\r\n", as a slice of
// br's buffer valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, badResponse("line too long")
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// unexpectedEOF turns a clean EOF in the middle of a response into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// asciiEqualFold reports whether b equals the lower-case string s, ignoring
// ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// asciiContainsFold reports whether b contains the lower-case string s,
// ignoring ASCII case.
func asciiContainsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if asciiEqualFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}
