package sessions

import _ "embed"

// NodeModelAnswer is node/sessions.js, the exercise in Node (Express and
// cluster's process.send/worker.send), as deploylab up --app node-sessions
// uploads it beside the practice's package.json.
//
//go:embed node/sessions.js
var NodeModelAnswer []byte
