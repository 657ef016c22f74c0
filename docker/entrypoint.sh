#!/bin/sh
# Container entrypoint for Yizhan (一站).
#
# `yizhan serve ...` (the default command): bring the database schema up to date
# with `yizhan migrate`, then replace this shell with the server.
# Any other command (`yizhan check`, `yizhan create-user ...`, a shell) runs as
# given, without migrating.
set -eu

if [ "$#" -eq 0 ]; then
    set -- yizhan serve --host 0.0.0.0 --port 8080
fi

if [ "$1" = "yizhan" ] && [ "${2:-}" = "serve" ]; then
    yizhan migrate
fi

exec "$@"
