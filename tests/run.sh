#!/usr/bin/env bash
# The one test command: installs what the suite needs (Debian 12) and runs the whole suite.
#
#   bash tests/run.sh                 install missing packages, then cargo test --workspace --all-features
#   bash tests/run.sh -- <filter>     extra arguments go to cargo test (e.g. a test name filter)
#   bash tests/run.sh --install-only  install missing packages and stop
set -euo pipefail

repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# Debian 12 (bookworm) package names. nginx-light is the basic nginx build; the benchmark
# uses it as its static-file baseline. chromium-driver provides /usr/bin/chromedriver.
packages=(chromium chromium-driver ffmpeg wrk nginx-light nodejs python3-pip)
# tests/browser_player.rs also drives Firefox: firefox-esr decodes H.264/AAC through ffmpeg's
# libavcodec. Its driver, geckodriver, is not packaged in Debian 12 (see below).
packages+=(firefox-esr)
# ...and WebKit, Safari's engine: WebKitGTK's MiniBrowser (libwebkit2gtk-4.1-0, pulled in by
# webkit2gtk-driver, which provides /usr/bin/WebKitWebDriver) on an Xvfb display, as it has no
# headless mode. WebKitGTK plays media through GStreamer: gstreamer1.0-libav decodes H.264 and
# AAC, gstreamer1.0-plugins-bad has the h264parse its Media Source pipeline needs (without it
# the video loads but never plays). plugins-base and -good (MP4 demuxing, AAC parsing) come as
# dependencies of the library; our captions are <track> files WebKit reads itself.
packages+=(webkit2gtk-driver xvfb gstreamer1.0-libav gstreamer1.0-plugins-bad)
# tests/installer.rs: shellcheck, `nft -c`, `systemd-analyze verify`, systemd-sysusers, openssl.
packages+=(shellcheck nftables systemd openssl)
# HTTPS tests (tests/tls*.rs): openssl s_client and curl as TLS peers, pebble as the ACME server.
packages+=(openssl curl pebble)

install_only=false
if [[ "${1:-}" == "--install-only" ]]; then
    install_only=true
    shift
fi
if [[ "${1:-}" == "--" ]]; then
    shift
fi

missing=()
for pkg in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "tests/run.sh: installing missing packages: ${missing[*]}" >&2
    sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            echo "tests/run.sh: need root (or sudo) to install: ${missing[*]}" >&2
            exit 1
        fi
    fi
    # Keep package scripts from starting daemons (the system nginx would grab port 80);
    # the tests start their own peers. Only add the policy if the machine has none.
    policy=/usr/sbin/policy-rc.d
    added_policy=false
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        added_policy=true
        trap '"${sudo[@]}" rm -f "$policy"' EXIT
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
    if $added_policy; then
        "${sudo[@]}" rm -f "$policy"
        trap - EXIT
    fi
fi

# The independent tus client that tests/tus_client_compat.rs drives (PyPI `tuspy`).
if ! python3 -c 'import tusclient' 2>/dev/null; then
    echo "tests/run.sh: installing the Python tus client: python3 -m pip install tuspy" >&2
    # Debian's own Python refuses system-wide pip installs (PEP 668) unless told otherwise.
    python3 -m pip install --quiet --disable-pip-version-check tuspy \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages tuspy
fi

# The S3-compatible server that tests/backup_s3.rs backs up to (PyPI `moto` with its server extra).
if ! python3 -c 'import moto.server, flask, werkzeug' 2>/dev/null; then
    echo "tests/run.sh: installing moto's S3 server: python3 -m pip install 'moto[server]'" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'moto[server]'
fi

# geckodriver (the WebDriver server for Firefox) is published by Mozilla on crates.io; the first
# build takes a few minutes, later runs find it in ~/.cargo/bin.
geckodriver="${REELBOX_GECKODRIVER:-$(command -v geckodriver || true)}"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ -z "$geckodriver" && -x "$cargo_bin/geckodriver" ]]; then
    geckodriver="$cargo_bin/geckodriver"
fi
if [[ -z "$geckodriver" ]]; then
    echo "tests/run.sh: installing geckodriver: cargo install --locked geckodriver" >&2
    cargo install --locked --quiet geckodriver
    geckodriver="$cargo_bin/geckodriver"
fi

if $install_only; then
    exit 0
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelbox-target}"
export REELBOX_CHROMEDRIVER="${REELBOX_CHROMEDRIVER:-/usr/bin/chromedriver}"
export REELBOX_CHROMIUM="${REELBOX_CHROMIUM:-/usr/bin/chromium}"
export REELBOX_GECKODRIVER="${REELBOX_GECKODRIVER:-$geckodriver}"
export REELBOX_FIREFOX="${REELBOX_FIREFOX:-/usr/bin/firefox-esr}"
export REELBOX_WEBKITDRIVER="${REELBOX_WEBKITDRIVER:-/usr/bin/WebKitWebDriver}"
# MiniBrowser lives under /usr/lib/<multiarch>/webkit2gtk-4.1/; the test finds it there unless
# REELBOX_MINIBROWSER says otherwise (likewise Xvfb on the PATH, or REELBOX_XVFB).

status=0
cargo test --workspace --all-features "$@" || status=$?
exit "$status"
