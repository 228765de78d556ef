#!/bin/sh
# Install the `codeq` command for the current user, in an isolated environment.
#
#   sh install.sh                      from the checkout this script is in, else from the package index
#   sh install.sh --version 0.1.0      that version from the package index
#   sh install.sh --from ~/src/codeq   from a local checkout
#   sh install.sh --uninstall          remove what this script installed
#   sh install.sh --system-site-packages   let the environment reuse the system Python's packages
#
# Uses pipx when it is installed (--method venv to opt out); otherwise a virtual
# environment in ~/.local/share/codeq/venv (CODEQ_INSTALL_DIR) with a link in
# ~/.local/bin (CODEQ_BIN_DIR). Running it again upgrades in place;
# pip's settings (PIP_INDEX_URL, PIP_FIND_LINKS, ...) apply, under pipx too.
# Python (3.11 or newer): CODEQ_PYTHON, else python3, or under pipx pipx's default.
set -eu

INSTALL_DIR="${CODEQ_INSTALL_DIR:-$HOME/.local/share/codeq}"
BIN_DIR="${CODEQ_BIN_DIR:-$HOME/.local/bin}"
PYTHON="${CODEQ_PYTHON:-python3}"
VENV="$INSTALL_DIR/venv"
METHOD=""
VERSION=""
SOURCE=""
ACTION=install
VENV_OPTIONS=""

say() { printf 'codeq-install: %s\n' "$*"; }
die() { printf 'codeq-install: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --version) [ $# -ge 2 ] || die "--version needs a version"; VERSION="$2"; shift 2 ;;
        --version=*) VERSION="${1#*=}"; shift ;;
        --from) [ $# -ge 2 ] || die "--from needs a directory"; SOURCE="$2"; shift 2 ;;
        --from=*) SOURCE="${1#*=}"; shift ;;
        --method) [ $# -ge 2 ] || die "--method needs pipx or venv"; METHOD="$2"; shift 2 ;;
        --method=*) METHOD="${1#*=}"; shift ;;
        --uninstall) ACTION=uninstall; shift ;;
        --system-site-packages) VENV_OPTIONS="--system-site-packages"; shift ;;
        -h|--help) usage 0 ;;
        *) printf 'codeq-install: unknown option %s\n\n' "$1" >&2; usage 2 ;;
    esac
done

if [ -z "$METHOD" ]; then
    if command -v pipx >/dev/null 2>&1; then METHOD=pipx; else METHOD=venv; fi
fi
case "$METHOD" in pipx|venv) ;; *) die "--method is pipx or venv, not $METHOD" ;; esac

uninstall() {
    removed=no
    if command -v pipx >/dev/null 2>&1 && pipx list --short 2>/dev/null | grep -q '^codeq '; then
        pipx uninstall codeq && removed=yes
    fi
    if [ -L "$BIN_DIR/codeq" ] && [ "$(readlink "$BIN_DIR/codeq")" = "$VENV/bin/codeq" ]; then
        rm -f "$BIN_DIR/codeq" && removed=yes
    fi
    if [ -d "$VENV" ]; then
        rm -rf "$VENV" && removed=yes
        rmdir "$INSTALL_DIR" 2>/dev/null || true
    fi
    if [ "$removed" = yes ]; then say "codeq uninstalled"; else say "codeq was not installed"; fi
}

if [ "$ACTION" = uninstall ]; then
    uninstall
    exit 0
fi

# What to install: an explicit checkout, a version from the index, or the checkout we are in.
if [ -n "$SOURCE" ] && [ -n "$VERSION" ]; then
    die "give --from or --version, not both"
fi
if [ -z "$SOURCE" ] && [ -z "$VERSION" ]; then
    here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
    if [ -f "$here/pyproject.toml" ] && grep -q '^name = "codeq"' "$here/pyproject.toml"; then
        SOURCE="$here"
    fi
fi
if [ -n "$SOURCE" ]; then
    [ -f "$SOURCE/pyproject.toml" ] || die "$SOURCE is not a codeq checkout (no pyproject.toml)"
    SOURCE=$(CDPATH='' cd -- "$SOURCE" && pwd)
    say "installing codeq from the checkout $SOURCE"
    # Build from a clean copy: nothing is written into the checkout, and no stale
    # build/ directory of an earlier build can leak into the package.
    STAGE=$(mktemp -d)
    trap 'rm -rf "$STAGE"' EXIT
    (cd "$SOURCE" && tar cf - --exclude=./.git --exclude=./build --exclude=./dist \
        --exclude=./.venv --exclude=./venv --exclude='*.egg-info' --exclude=__pycache__ \
        --exclude=./.hypothesis --exclude=./.pytest_cache --exclude=./.mypy_cache \
        --exclude=./.ruff_cache .) | (cd "$STAGE" && tar xf -)
    SPEC="$STAGE"
elif [ -n "$VERSION" ]; then
    SPEC="codeq==$VERSION"
    say "installing codeq $VERSION"
else
    SPEC="codeq"
    say "installing the latest codeq"
fi
if [ -n "$VERSION" ]; then
    FAILED="codeq $VERSION could not be installed: the package index has no such version, or cannot be reached (see above)"
else
    FAILED="could not install $SPEC (see above)"
fi

if [ "$METHOD" = pipx ]; then
    if [ -n "${CODEQ_PYTHON:-}" ]; then set -- --python "$PYTHON"; else set --; fi
    pipx install --force $VENV_OPTIONS "$@" "$SPEC" || die "$FAILED"
    BIN_DIR=$(pipx environment --value PIPX_BIN_DIR 2>/dev/null) || BIN_DIR="${PIPX_BIN_DIR:-$HOME/.local/bin}"
    LINK="$BIN_DIR/codeq"
else
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set CODEQ_PYTHON)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "codeq needs Python 3.11 or newer ($PYTHON is older)"
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
        rm -rf "$VENV"
        mkdir -p "$INSTALL_DIR"
        "$PYTHON" -m venv $VENV_OPTIONS "$VENV" || die "could not create a virtual environment in $VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$SPEC" \
        || die "$FAILED"
    mkdir -p "$BIN_DIR"
    ln -sfn "$VENV/bin/codeq" "$BIN_DIR/codeq"
    LINK="$BIN_DIR/codeq"
fi

"$LINK" --help >/dev/null 2>&1 || die "the installed codeq does not run ($LINK)"
say "installed: $LINK"
case ":$PATH:" in
    *":$BIN_DIR:"*) ;;
    *) say "$BIN_DIR is not on your PATH; add this line to your shell's profile:"
       say "    export PATH=\"$BIN_DIR:\$PATH\"" ;;
esac
say "shell completion: see completions/ in the checkout, or run: codeq --install-completion"
