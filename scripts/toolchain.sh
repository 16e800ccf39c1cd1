#!/bin/sh
# Make sure cargo 1.85 or newer is available; on Debian install it from apt.
set -e
need=85
ok() {
    command -v cargo >/dev/null 2>&1 || return 1
    minor=$(cargo --version | sed -E 's/^cargo 1\.([0-9]+).*/\1/')
    [ "$minor" -ge "$need" ]
}
ok && exit 0
if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends cargo rustc gcc libc6-dev >/dev/null || true
fi
ok && exit 0
echo "oomwatch needs cargo 1.$need or newer, found: $(cargo --version 2>/dev/null || echo none)." >&2
echo "Debian 13 ships it (apt-get install cargo); on Debian 12 use rustup." >&2
exit 1
