// Package remote is deploylab's transport: it runs commands on a host, copies
// files to it and gathers its facts, over SSH (a *Client) or on the machine
// itself (a *Local, Ansible's "connection: local"). Both implement Executor.
//
// It knows nothing of deploylab's jobs. What it does guarantee:
//   - host keys are always verified against known_hosts (HostKeyAlgorithms are
//     set from what is known, so a host known by one key type is not refused
//     when it also offers another); an unknown host is refused unless
//     Host.AcceptNew, which records the key; a changed key is always refused;
//   - one connection per host, with at most MaxSessions concurrent sessions on
//     it (sshd's MaxSessions defaults to 10), keepalives, a dial timeout and
//     per-command contexts: cancelling a context kills the remote command and
//     returns at once;
//   - uploads are checksum-skipped when identical and otherwise atomic (written
//     to a temporary name in the same directory, then renamed);
//   - secrets (passwords, passphrases, key material) never appear in command
//     lines, errors or logs: the sudo password goes to sudo on its stdin, and
//     only to a host whose sudo asks for one (sudo -n is tried first);
//   - what a host prints is bounded: MaxOutput of stdout and MaxStderr of
//     stderr per command, HostOutputBudget per host at once; the rest is
//     counted and Run returns an *OutputError ("truncated");
//   - every step (connect, session open, exec, each SFTP request) ends when
//     its context does, even on a host that stopped answering;
//   - a key's passphrase is asked once per WithPassphrase option, whatever
//     the number of hosts, and ReadSecret leaves no reader on the terminal.
//
// Errors that a user can act on are classified with internal/fail: *HostKeyError
// and *AuthError as fail.Auth, an address that cannot be reached as
// fail.Unreachable.
package remote
