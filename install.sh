#!/usr/bin/env bash
# Install clawunits: OS build dependencies, a virtualenv with the package, a user manager to run sessions in,
# the unit files of units/, and a credentials check. Safe to run again; every step says what it did or found.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ./install.sh [--dev] [--demo] [--linger] [--plugin-only] [--journal-limit] [-h|--help]

  --dev          also install the test extras (.[test]) and the GitHub CLI (gh) the tests check against
  --demo         afterwards run an offline demo session against a scripted loopback Messages API
  --linger       run `loginctl enable-linger $USER` so sessions outlive logout (normal hosts)
  --plugin-only  only (re)install the OpenClaw plugin, for a clawunits installed before
  --journal-limit  only install a journald drop-in raising its rate limit (root; see units/journald-clawunits.conf)
  -h --help      show this help

When `openclaw` is on PATH, the OpenClaw plugin (plugin/ and skills/) is installed into it too.

Environment: CLAWUNITS_VENV (default <repo>/.venv), PYTHON (default python3), XDG_CONFIG_HOME,
CLAWUNITS_JOURNALD_DROPIN_DIR (default /etc/systemd/journald.conf.d).
EOF
}

DEV=0 DEMO=0 LINGER=0 PLUGIN_ONLY=0 JOURNAL_LIMIT=0
for arg in "$@"; do
    case "$arg" in
        --dev) DEV=1 ;;
        --plugin-only) PLUGIN_ONLY=1 ;;
        --demo) DEMO=1 ;;
        --linger) LINGER=1 ;;
        --journal-limit) JOURNAL_LIMIT=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${CLAWUNITS_VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"
ME="${USER:-$(id -un)}"
HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
UNIT_DIR="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
CLAW="$VENV/bin/clawunits"
DEMO_PORT=18765
JOURNALD_DROPIN_DIR="${CLAWUNITS_JOURNALD_DROPIN_DIR:-/etc/systemd/journald.conf.d}"
JOURNALD_DROPIN="$JOURNALD_DROPIN_DIR/60-clawunits.conf"
DEMO_UNIT=clawunits-demo-api.service

MISSING=()      # what the summary reports as missing
MANAGER_MODE="" # how the user manager is provided
MANAGER_OK=0
INSTALLED_UNITS=()

say() { printf 'install: %s\n' "$*"; }
warn() { printf 'install: WARNING: %s\n' "$*" >&2; }
die() { printf 'install: ERROR: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------------------------------- 1. OS packages
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

os_packages() {
    local want=(gcc pkg-config libsystemd-dev dbus-user-session) missing=() pkg
    # The tests check `clawunits pr` against the real GitHub CLI (logged out: no GitHub is reachable).
    if [[ $DEV -eq 1 ]]; then want+=(gh); fi
    # A Debian python3 needs python3-venv for `-m venv` and python3-dev for building pystemd; pyenv/venv
    # interpreters bring both.
    if command -v "$PYTHON" >/dev/null; then
        "$PYTHON" -c 'import ensurepip' 2>/dev/null || want+=(python3-venv)
        "$PYTHON" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(
            os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || want+=(python3-dev)
    fi
    if ! command -v dpkg-query >/dev/null; then
        command -v gcc >/dev/null || MISSING+=("gcc")
        pkg-config --exists libsystemd 2>/dev/null || MISSING+=("libsystemd development files (pkg-config libsystemd)")
        say "not a Debian system: install ${want[*]} (or your distribution's equivalents) yourself"
        return
    fi
    for pkg in "${want[@]}"; do deb_installed "$pkg" || missing+=("$pkg"); done
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "OS packages present: ${want[*]}"
        return
    fi
    if ! is_root || ! command -v apt-get >/dev/null; then
        warn "missing OS packages: ${missing[*]}"
        say "run: sudo apt-get install ${missing[*]}"
        MISSING+=("OS packages: ${missing[*]}")
        return
    fi
    # libsystemd-dev requires the exact libsystemd0 version; pin it where the mirror still has it, so apt
    # does not upgrade systemd underneath running daemons.
    local i ver
    ver="$(dpkg-query -W -f='${Version}' libsystemd0 2>/dev/null || true)"
    say "installing OS packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    for i in "${!missing[@]}"; do
        if [[ ${missing[$i]} == libsystemd-dev && -n $ver ]] &&
            apt-cache madison libsystemd-dev 2>/dev/null | grep -qF "| $ver |"; then
            missing[i]="libsystemd-dev=$ver"
        fi
    done
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    say "installed OS packages: ${missing[*]}"
}

# -------------------------------------------------------------------------------- 2. Python and virtualenv
python_env() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python >= 3.11 (apt-get install python3)"
    "$PYTHON" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' ||
        die "$PYTHON is $("$PYTHON" -V 2>&1): clawunits needs Python >= 3.11 (set PYTHON=/path/to/python3.11)"
    if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
        say "using virtualenv $VENV ($("$VENV/bin/python" -V 2>&1))"
    else
        "$PYTHON" -m venv --clear "$VENV"
        say "created virtualenv $VENV ($("$VENV/bin/python" -V 2>&1))"
    fi
    local target="$REPO" start=$SECONDS
    [[ $DEV -eq 1 ]] && target="${REPO}[test]"
    # setuptools builds in <repo>/build and would package modules deleted since the last install.
    rm -rf "$REPO/build"
    # -q keeps pip quiet but still shows errors; drop only the warnings about configured index dirs that
    # do not exist (machine-wide pip config on some images).
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$target" </dev/null \
        2> >(grep -v "^WARNING: Location 'file://.*' is ignored" >&2) ||
        die "pip install of $target failed (see above)"
    say "installed clawunits$([[ $DEV -eq 1 ]] && echo ' with test extras') into $VENV ($((SECONDS - start)) s)"
}

# -------------------------------------------------------------------------------------- 3. user manager
user_manager() {
    local state
    state="$(systemctl --user is-system-running 2>/dev/null </dev/null || true)"
    if [[ -f $XDG_RUNTIME_DIR/clawunits-bootstrap/state.json ]]; then
        MANAGER_MODE="started by clawunits.bootstrap (container/CI mode)" # by an earlier run
    elif [[ $state == running || $state == degraded ]]; then
        MANAGER_MODE="existing user manager at $XDG_RUNTIME_DIR ($state)"
        if [[ $(cat /proc/1/comm 2>/dev/null) != systemd ]]; then
            : # started by hand in a container: no logind, lingering does not apply
        elif [[ $LINGER -eq 1 ]]; then
            if loginctl enable-linger "$ME" </dev/null; then
                say "enabled lingering for $ME: sessions keep running after logout and start at boot"
            else
                warn "loginctl enable-linger $ME failed"
            fi
        elif [[ $(loginctl show-user "$ME" -p Linger --value 2>/dev/null </dev/null) != yes ]]; then
            say "advice: run \`loginctl enable-linger $ME\` (or ./install.sh --linger) so sessions outlive logout"
        fi
    else
        # Container / CI mode: no systemd as PID 1 or no manager for us; bootstrap starts what is missing.
        MANAGER_MODE="started by clawunits.bootstrap (container/CI mode)"
        [[ $LINGER -eq 1 ]] && say "--linger skipped: no logind user manager on this host"
    fi
    # Also on a normal host: checks journald and the user bus, and starts them where that is possible.
    if "$VENV/bin/python" -m clawunits.bootstrap up </dev/null | sed 's/^/install: /'; then
        MANAGER_OK=1
    else
        MISSING+=("a usable user manager (see the error above)")
        return
    fi
    if [[ $MANAGER_MODE == started* ]]; then
        say "export XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR   # needed by systemctl --user, journalctl and clawunits"
    fi
}

# ------------------------------------------------------------------------------------ journald rate limit
journal_limit_advice() {
    if [[ -f $JOURNALD_DROPIN ]]; then
        say "journald rate limit: raised by $JOURNALD_DROPIN"
    elif is_root; then
        say "advice: ./install.sh --journal-limit raises journald's per-user rate limit (lines past it are dropped)"
    else
        say "note: journald drops lines past a per-user rate limit; an administrator can raise it:" \
            "sudo ./install.sh --journal-limit"
    fi
}

install_journal_limit() {
    local src="$REPO/units/journald-clawunits.conf"
    if [[ -f $JOURNALD_DROPIN ]] && cmp -s "$src" "$JOURNALD_DROPIN"; then
        say "journald rate limit: $JOURNALD_DROPIN is already in place"
        return 0
    fi
    if ! mkdir -p "$JOURNALD_DROPIN_DIR" 2>/dev/null || ! install -m 0644 "$src" "$JOURNALD_DROPIN" 2>/dev/null; then
        warn "cannot write $JOURNALD_DROPIN (needs root): sudo ./install.sh --journal-limit"
        return 1
    fi
    say "installed $JOURNALD_DROPIN (RateLimitBurst=200000 per 30 s)"
    if [[ $(cat /proc/1/comm 2>/dev/null) == systemd ]] && systemctl restart systemd-journald </dev/null; then
        say "restarted systemd-journald: the new limit applies now"
    else
        say "the new limit applies when journald next starts"
    fi
}

# ----------------------------------------------------------------------------------------- 4. unit files
install_units() {
    local files=() f name dest tmp text enable=()
    shopt -s nullglob
    files=("$REPO"/units/*.service "$REPO"/units/*.timer "$REPO"/units/*.slice)
    shopt -u nullglob
    if [[ ${#files[@]} -eq 0 ]]; then
        say "no unit files in units/: nothing to install"
        return
    fi
    mkdir -p "$UNIT_DIR"
    shopt -u patsub_replacement 2>/dev/null || true # bash 5.2: `&` in ${x//a/b} would mean the match
    for f in "${files[@]}"; do
        name="$(basename "$f")"
        dest="$UNIT_DIR/$name"
        text="$(<"$f")"
        tmp="$(mktemp "$UNIT_DIR/.$name.XXXXXX")"
        text="${text//@CLAWUNITS@/"$CLAW"}"
        text="${text//@DOCS@/"$REPO/docs"}"
        printf '%s\n' "${text//@PATH@/"$PATH"}" >"$tmp"
        if cmp -s "$tmp" "$dest"; then
            rm -f "$tmp"
            say "unit $name is up to date in $UNIT_DIR"
        else
            chmod 0644 "$tmp"
            mv -f "$tmp" "$dest"
            say "installed unit $name into $UNIT_DIR"
        fi
        INSTALLED_UNITS+=("$name")
        [[ $name == *.timer || $name == clawunits-notifier.service || $name == clawunits-recover.service ]] &&
            enable+=("$name")
    done
    if [[ $MANAGER_OK -ne 1 ]]; then
        warn "no user manager: skipped daemon-reload and enabling ${enable[*]:-units}"
        return
    fi
    # The manager searches the config dir of its own environment, which may differ from ours.
    local search
    search=" $(systemctl --user show -p UnitPath --value </dev/null 2>/dev/null || true) "
    if [[ $search != *" $UNIT_DIR "* ]]; then
        warn "the user manager does not load units from $UNIT_DIR (XDG_CONFIG_HOME or HOME differ from its own)"
        MISSING+=("units in a directory the user manager reads")
    fi
    systemctl --user daemon-reload </dev/null
    say "reloaded the user manager"
    for name in "${enable[@]}"; do
        if [[ $name == clawunits-recover.service ]]; then
            # Runs at each start of the user manager; nothing to run now.
            if systemctl --user enable "$name" </dev/null; then
                say "enabled $name (resumes interrupted sessions when the user manager starts)"
            else
                warn "could not enable $name: see systemctl --user status $name"
                MISSING+=("enabling $name")
            fi
            continue
        fi
        # A service is restarted so that a reinstall takes effect; a timer just needs to run.
        if systemctl --user enable "$name" </dev/null && systemctl --user restart "$name" </dev/null; then
            say "enabled and (re)started $name"
        else
            warn "could not enable $name: see systemctl --user status $name"
            MISSING+=("running $name")
        fi
    done
}

# ------------------------------------------------------------------------------------------ 5. credentials
credentials() {
    local creds="${CLAUDE_CONFIG_DIR:-$HOME/.claude}/.credentials.json" var
    for var in ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN ANTHROPIC_BASE_URL CLAUDE_CODE_OAUTH_TOKEN; do
        if [[ -n ${!var:-} ]]; then
            say "credentials: $var is set"
            return
        fi
    done
    if [[ -f $creds ]]; then
        say "credentials: found $creds"
        return
    fi
    warn "no credentials: sessions cannot authenticate to the Anthropic API"
    say "fix: export ANTHROPIC_API_KEY=... (in the environment clawunits runs in), or run \`claude login\`" \
        "(or \`claude setup-token\` and export CLAUDE_CODE_OAUTH_TOKEN) so that $creds exists"
    MISSING+=("credentials (ANTHROPIC_API_KEY or $creds)")
}

# ------------------------------------------------------------------------------------------------ 6. demo
port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$DEMO_PORT") 2>/dev/null; }

stop_demo_api() {
    systemctl --user stop "$DEMO_UNIT" </dev/null 2>/dev/null || true
    systemctl --user reset-failed "$DEMO_UNIT" </dev/null 2>/dev/null || true
}

demo() {
    [[ $MANAGER_OK -eq 1 ]] || die "--demo needs a user manager"
    stop_demo_api
    trap stop_demo_api EXIT
    systemd-run --user --quiet --collect --unit "$DEMO_UNIT" \
        "$VENV/bin/python" -m clawunits.testing.scripted_api --port "$DEMO_PORT" </dev/null
    local i
    for i in $(seq 100); do
        port_answers && break
        [[ $i -eq 100 ]] && die "the demo API did not answer on port $DEMO_PORT; see journalctl --user-unit $DEMO_UNIT"
        sleep 0.1
    done
    say "demo: scripted Messages API listening on http://127.0.0.1:$DEMO_PORT (unit $DEMO_UNIT)"

    local launch id unit
    launch="$(env ANTHROPIC_BASE_URL="http://127.0.0.1:$DEMO_PORT" ANTHROPIC_API_KEY=sk-ant-demo \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 \
        DISABLE_AUTOUPDATER=1 IS_SANDBOX=1 \
        "$CLAW" launch "say hello" --workdir "$PWD" --multi-turn-disabled --json </dev/null)"
    id="$("$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["id"])' <<<"$launch")"
    unit="$("$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["unit"])' <<<"$launch")"
    say "demo: launched session $id as unit $unit"
    "$CLAW" wait "$id" --timeout 120 </dev/null
    say "demo: session $id ended; its output:"
    "$CLAW" output "$id" </dev/null
    say "demo: inspect it with: systemctl --user status $unit"
    say "demo:            and: journalctl --user-unit $unit -o cat"
    stop_demo_api
    trap - EXIT
    say "demo: stopped $DEMO_UNIT"
}

# -------------------------------------------------------------------------------------- 7. OpenClaw plugin
# Stages plugin/ and skills/ as one package, installs it with `openclaw plugins install` (a copy under the
# OpenClaw state dir) and points its config at this virtualenv's clawunits. Skipped without openclaw.
PLUGIN_STATE="skipped"

openclaw_plugin() {
    if ! command -v openclaw >/dev/null; then
        PLUGIN_STATE="skipped: openclaw is not on PATH"
        say "OpenClaw plugin: skipped (openclaw is not on PATH; install OpenClaw, then run ./install.sh --plugin-only)"
        return
    fi
    [[ -x $CLAW ]] || die "$CLAW not found: run ./install.sh first"
    local stage
    stage="$(mktemp -d)"
    # The staged copy holds the plugin's runtime files and its skills, not its tests.
    cp -R "$REPO/plugin/." "$stage/"
    rm -rf "$stage/test" "$stage/testing" "$stage/node_modules"
    cp -R "$REPO/skills" "$stage/skills"
    chmod -R go-w "$stage"
    if ! openclaw plugins install "$stage" --force --accept-capabilities </dev/null | sed 's/^/install: openclaw: /'; then
        rm -rf "$stage"
        warn "openclaw plugins install failed (see above)"
        PLUGIN_STATE="NOT installed: openclaw plugins install failed"
        MISSING+=("the OpenClaw plugin (openclaw plugins install failed)")
        return
    fi
    rm -rf "$stage"
    if ! openclaw config set plugins.entries.clawunits.config.clawunitsPath "$CLAW" </dev/null >/dev/null; then
        warn "could not set plugins.entries.clawunits.config.clawunitsPath to $CLAW"
        MISSING+=("plugins.entries.clawunits.config.clawunitsPath = $CLAW in the OpenClaw config")
    fi
    PLUGIN_STATE="installed into OpenClaw (clawunitsPath = $CLAW)"
    say "OpenClaw plugin: installed; its config clawunitsPath is $CLAW"
    if [[ $(command -v clawunits || true) != "$CLAW" ]]; then
        say "advice: the claude-code-orchestration skill needs clawunits on the gateway's PATH:" \
            "ln -sf $CLAW ~/.local/bin/clawunits (or add $VENV/bin to PATH)"
    fi
    say "restart the gateway to load it: openclaw gateway restart"
}

# --------------------------------------------------------------------------------------------------- main
if [[ $JOURNAL_LIMIT -eq 1 ]]; then
    install_journal_limit
    exit $?
fi
if [[ $PLUGIN_ONLY -eq 1 ]]; then
    openclaw_plugin
    [[ ${#MISSING[@]} -eq 0 && $PLUGIN_STATE == installed* ]] || exit 1
    exit 0
fi
os_packages
python_env
user_manager
journal_limit_advice
install_units
credentials
[[ $DEMO -eq 1 ]] && demo
openclaw_plugin

echo
say "summary"
say "  installed:    clawunits into $VENV ($CLAW)"
say "  user manager: ${MANAGER_MODE:-none}$([[ $MANAGER_OK -eq 1 ]] || echo ' - NOT usable')"
if [[ $MANAGER_MODE == started* ]]; then
    say "                export XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
fi
if [[ ${#INSTALLED_UNITS[@]} -gt 0 ]]; then
    say "  units:        ${INSTALLED_UNITS[*]} (in $UNIT_DIR)"
else
    say "  units:        none"
fi
say "  plugin:       $PLUGIN_STATE"
if [[ ${#MISSING[@]} -eq 0 ]]; then
    say "  missing:      nothing"
else
    say "  missing:      ${MISSING[0]}"
    for m in "${MISSING[@]:1}"; do say "                $m"; done
fi
[[ $MANAGER_OK -eq 1 ]] || exit 1
