package sessions

import (
	"encoding/json"
	"errors"
)

// Message is what workers and the master tell each other in master mode
// (cluster user messages, JSON):
//
//	{"op":"add","tok":…,"name":…,"exp":…,"t":…}   a worker issued a token
//	{"op":"del","tok":…,"t":…}                     a worker revoked one
//	{"op":"snap","entries":[[tok,name,exp],…],"t":…,"last":true,"total":N}
//	                                               the master's state, in chunks, to a new worker
//
// t is when the event happened (unix ns, the host's clock): the receiving
// worker measures propagation as its clock minus t.
type Message struct {
	Op    string  `json:"op"`
	Tok   string  `json:"tok,omitempty"`
	Name  string  `json:"name,omitempty"`
	Exp   int64   `json:"exp,omitempty"`
	T     int64   `json:"t"`
	Snap  []Entry `json:"-"`
	Last  bool    `json:"last,omitempty"`
	Total int     `json:"total,omitempty"`
}

type wireMsg struct {
	Op      string            `json:"op"`
	Tok     string            `json:"tok,omitempty"`
	Name    string            `json:"name,omitempty"`
	Exp     int64             `json:"exp,omitempty"`
	T       int64             `json:"t"`
	Entries []json.RawMessage `json:"entries,omitempty"`
	Last    bool              `json:"last,omitempty"`
	Total   int               `json:"total,omitempty"`
}

// snapChunk is how many entries one snapshot message carries (an entry is
// at most ~190 bytes of JSON; a cluster message at most 64 KiB).
const snapChunk = 300

// MarshalJSON writes the wire form.
func (m Message) MarshalJSON() ([]byte, error) {
	w := wireMsg{Op: m.Op, Tok: m.Tok, Name: m.Name, Exp: m.Exp, T: m.T, Last: m.Last, Total: m.Total}
	for _, e := range m.Snap {
		b, err := json.Marshal([]any{e.Token, e.Name, e.Exp})
		if err != nil {
			return nil, err
		}
		w.Entries = append(w.Entries, b)
	}
	return json.Marshal(w)
}

var errBadMsg = errors.New("sessions: malformed message")

// ParseMessage reads a message from a worker or the master; it is not
// trusted: every token and name is checked, a snapshot holds at most
// snapChunk entries.
func ParseMessage(b []byte) (Message, error) {
	var w wireMsg
	if len(b) > 64<<10 || json.Unmarshal(b, &w) != nil {
		return Message{}, errBadMsg
	}
	m := Message{Op: w.Op, Tok: w.Tok, Name: w.Name, Exp: w.Exp, T: w.T, Last: w.Last, Total: w.Total}
	switch w.Op {
	case "add":
		if !validToken(w.Tok) || !ValidName(w.Name) || len(w.Entries) > 0 {
			return Message{}, errBadMsg
		}
	case "del":
		if !validToken(w.Tok) || len(w.Entries) > 0 {
			return Message{}, errBadMsg
		}
	case "snap":
		if len(w.Entries) > snapChunk || w.Tok != "" {
			return Message{}, errBadMsg
		}
		for _, raw := range w.Entries {
			var tuple []json.RawMessage
			if json.Unmarshal(raw, &tuple) != nil || len(tuple) != 3 {
				return Message{}, errBadMsg
			}
			var e Entry
			if json.Unmarshal(tuple[0], &e.Token) != nil || json.Unmarshal(tuple[1], &e.Name) != nil ||
				json.Unmarshal(tuple[2], &e.Exp) != nil || !validToken(e.Token) || !ValidName(e.Name) {
				return Message{}, errBadMsg
			}
			m.Snap = append(m.Snap, e)
		}
	default:
		return Message{}, errBadMsg
	}
	return m, nil
}

// validToken: what ParseBearer accepts.
func validToken(t string) bool {
	_, ok := ParseBearer("Bearer " + t)
	return ok && t != ""
}
