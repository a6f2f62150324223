#!/bin/bash
# lib/guard.sh CMD [ARG...]
# Run CMD and stop this whole process group (SIGTERM) as soon as our stdin reaches end-of-file.
# The Go tests start every server through it, in a new process group, with a pipe as stdin that
# they never write to: if the test binary dies without cleaning up (go test -timeout, SIGKILL),
# the kernel closes the pipe and the servers (php -S workers included) go away too.
# Exits with CMD's status when CMD exits on its own.
exec 3<&0
"$@" < /dev/null 3<&- &
child=$!
{ cat <&3 > /dev/null; kill -TERM 0; } &
exec 3<&-
wait "$child"
