#!/bin/bash
# replay.sh COMMANDS: types a student's COMMANDS file at a shell, line by
# line in one bash, the way they would at the VM's prompt: each typed line
# goes to ~/.bash_history, as bash would write it. Directives (never in the
# history) stand for what the student did outside the shell:
#   #!file DEST SRC   DEST was written in an editor (nano) with the text of files/SRC
#   #!hist LINE       LINE is in the history but not run (installs the image
#                     already has, pm2 monit, pm2 logs left with Ctrl-C)
#   #!wait PORT       the student waited until the app answered on PORT
#   #!sh LINE         set-up that is not the student's (npm's offline cache)
# Anything else starting with # is a comment.
files=$(dirname "$0")/files
cd ~ || exit 1
HIST=~/.bash_history
while IFS= read -r line <&3 || [ -n "$line" ]; do
	case "$line" in
	'#!file '*)
		set -- ${line#\#!file }
		mkdir -p "$HOME/$(dirname "$1")" && cp "$files/$2" "$HOME/$1"
		printf 'nano %s\n' "$1" >>"$HIST"
		;;
	'#!hist '*) printf '%s\n' "${line#\#!hist }" >>"$HIST" ;;
	'#!wait '*)
		for i in $(seq 150); do
			curl -fs -o /dev/null "http://localhost:${line#\#!wait }/" && break
			sleep 0.2
		done
		;;
	'#!sh '*) eval "${line#\#!sh }" ;;
	'#'* | '') ;;
	*)
		printf '%s\n' "$line" >>"$HIST"
		eval "$line" || echo "replay: exit $?: $line" >&2
		;;
	esac
done 3<"$1"
