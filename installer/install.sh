#!/usr/bin/env bash
# reelbox installer for Debian 12 and Ubuntu 22.04/24.04. Run as root; see --help.
#
# What it does, in order: check the OS, install ffmpeg and the runtime packages, create the
# `reelbox` system user, install the binary under /opt/reelbox/versions/<version>/ and point
# /usr/local/bin/reelbox at it through /opt/reelbox/current (one atomic link swap; the previous
# version stays for --rollback), write /etc/reelbox/reelbox.toml, install the hardened systemd
# unit and the nftables rules, start the service, wait for /healthz and print the setup link.
# Running it again repairs or upgrades; the data in /var/lib/reelbox is never touched except
# by --uninstall --purge.
set -euo pipefail

readonly PROG="install.sh"
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly script_dir

# Settings from flags.
root=""
hostname_arg=""
admin_email=""
tls_mode=""
cert_file=""
key_file=""
binary=""
release_url=""
release_sha256=""
download_dir=""
ssh_port="22"
firewall=true
start=true
packages=true
interactive=auto
action=install
purge=false
healthz_timeout=120

usage() {
    cat <<'EOF'
Usage: install.sh [options]

Installs or upgrades reelbox as a systemd service (Debian 12, Ubuntu 22.04/24.04, as root).

Configuration (written to /etc/reelbox/reelbox.toml; asked for when run in a terminal,
required otherwise; an existing file is kept when none of these is given):
  --hostname NAME         the name people use, e.g. media.school.example (DNS must point here)
  --admin-email EMAIL     contact address for the certificate authority (Let's Encrypt)
  --tls MODE              acme (automatic certificate, default), files (your own certificate),
                          or self-signed (for a first look on a LAN)
  --cert FILE --key FILE  certificate chain and private key (PEM) for --tls files

The binary (one of; default: build this checkout with cargo when run from one):
  --binary PATH           an already built reelbox binary
  --release-url URL       download the binary from URL (https only) ...
  --release-sha256 HEX    ... and check it against this SHA-256 (published with the release)

Other options:
  --ssh-port PORT         SSH port the firewall keeps open (default 22)
  --no-firewall           do not install or load the nftables rules
  --no-start              install everything but do not start the service
  --non-interactive       never prompt; fail when required settings are missing
  --rollback              switch back to the previously installed version and restart
  --uninstall             remove the service, binary, rules and configuration; keep the data
  --purge                 with --uninstall: also delete /var/lib/reelbox and the reelbox user
  --root DIR              install into DIR instead of / (image builds and tests): no packages,
                          no service start, firewall rules only checked (nft -c)
  --healthz-timeout SEC   how long to wait for the service to answer (default 120)
  -h, --help              show this help

Examples:
  sudo ./install.sh --hostname media.school.example --admin-email it@school.example --tls acme
  sudo ./install.sh --hostname media.school.lan --tls files --cert /root/media.pem --key /root/media.key
  sudo ./install.sh --uninstall          # keeps /var/lib/reelbox
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

need_value() {
    [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --hostname) need_value "$@"; hostname_arg="$2"; shift 2 ;;
            --admin-email) need_value "$@"; admin_email="$2"; shift 2 ;;
            --tls) need_value "$@"; tls_mode="$2"; shift 2 ;;
            --cert) need_value "$@"; cert_file="$2"; shift 2 ;;
            --key) need_value "$@"; key_file="$2"; shift 2 ;;
            --binary) need_value "$@"; binary="$2"; shift 2 ;;
            --release-url) need_value "$@"; release_url="$2"; shift 2 ;;
            --release-sha256) need_value "$@"; release_sha256="${2,,}"; shift 2 ;;
            --ssh-port) need_value "$@"; ssh_port="$2"; shift 2 ;;
            --root) need_value "$@"; root="$2"; shift 2 ;;
            --healthz-timeout) need_value "$@"; healthz_timeout="$2"; shift 2 ;;
            --no-firewall) firewall=false; shift ;;
            --no-start) start=false; shift ;;
            --non-interactive) interactive=false; shift ;;
            --rollback) action=rollback; shift ;;
            --uninstall) action=uninstall; shift ;;
            --purge) purge=true; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
    done
    if [[ -n "$root" ]]; then
        [[ -d "$root" ]] || die "--root $root is not a directory"
        root="$(cd -- "$root" && pwd)"
        [[ "$root" != "/" ]] || root=""
    fi
    if [[ -n "$root" ]]; then
        # A throwaway or image root: nothing runs against the live system.
        start=false
        packages=false
    fi
    if [[ -n "$release_sha256" && -z "$release_url" ]]; then
        die "--release-sha256 goes with --release-url"
    fi
    if $purge && [[ "$action" != uninstall ]]; then
        die "--purge only goes with --uninstall"
    fi
    if ! [[ "$ssh_port" =~ ^[0-9]+$ ]] || ((ssh_port < 1 || ssh_port > 65535)); then
        die "--ssh-port must be a port number, got '$ssh_port'"
    fi
    [[ "$healthz_timeout" =~ ^[0-9]+$ ]] || die "--healthz-timeout must be a number of seconds"
    if [[ "$interactive" == auto ]]; then
        if [[ -t 0 && -t 1 ]]; then interactive=true; else interactive=false; fi
    fi
}

# Paths inside the target root.
p() { printf '%s%s' "$root" "$1"; }

readonly OPT_DIR=/opt/reelbox
readonly BIN_LINK=/usr/local/bin/reelbox
readonly CONF_DIR=/etc/reelbox
readonly CONF_FILE=/etc/reelbox/reelbox.toml
readonly NFT_FILE=/etc/reelbox/reelbox.nft
readonly DATA_DIR=/var/lib/reelbox
readonly UNIT_FILE=/etc/systemd/system/reelbox.service
readonly SYSUSERS_FILE=/usr/lib/sysusers.d/reelbox.conf
readonly NFT_INCLUDE="include \"$NFT_FILE\""

check_root() {
    [[ "$(id -u)" == 0 ]] || die "run me as root (sudo $0 ...)"
}

check_os() {
    local os_release
    os_release="$(p /etc/os-release)"
    if [[ ! -r "$os_release" ]]; then
        [[ -n "$root" ]] || die "cannot read /etc/os-release: is this Debian or Ubuntu?"
        warn "$os_release missing: not checking the target's OS"
        return
    fi
    local id version
    # Read the two fields without sourcing the file (it may belong to another root).
    id="$(sed -n 's/^ID=//p' "$os_release" | tr -d '"' | head -n 1)"
    version="$(sed -n 's/^VERSION_ID=//p' "$os_release" | tr -d '"' | head -n 1)"
    case "$id:$version" in
        debian:12 | ubuntu:22.04 | ubuntu:24.04) say "system: $id $version" ;;
        *) die "unsupported system '$id $version': reelbox installs on Debian 12 and Ubuntu 22.04/24.04" ;;
    esac
    if [[ -z "$root" ]] && ! [[ -d /run/systemd/system ]]; then
        die "systemd is not running here; reelbox runs as a systemd service (use --root for images)"
    fi
}

install_packages() {
    $packages || return 0
    local wanted=(ffmpeg ca-certificates curl)
    $firewall && wanted+=(nftables)
    local missing=() pkg
    for pkg in "${wanted[@]}"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        say "packages: ${wanted[*]} already installed"
        return
    fi
    say "installing packages: ${missing[*]}"
    apt_update
    local candidate
    for pkg in "${missing[@]}"; do
        candidate="$(LC_ALL=C apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
        [[ -n "$candidate" && "$candidate" != "(none)" ]] && continue
        # Ubuntu ships ffmpeg in its universe component, which a trimmed server may lack.
        if [[ "$pkg" == ffmpeg ]] && grep -qs '^ID=ubuntu' /etc/os-release; then
            die "apt has no ffmpeg: enable Ubuntu's universe component (add-apt-repository universe), then run this again"
        fi
        die "apt has no package $pkg: check the sources in /etc/apt/sources.list.d, then run this again"
    done
    apt_get install -y -q --no-install-recommends "${missing[@]}"
}

# A freshly booted Ubuntu or Debian server often runs unattended-upgrades (or cloud-init's
# package update) for its first minutes, holding apt's locks: wait for them rather than fail.
# apt-get waits for the dpkg lock itself (DPkg::Lock::Timeout); `apt-get update` does not wait
# for the lists lock (Ubuntu 22.04's apt 2.4, Debian 12's 2.6), so it is retried here.
readonly APT_LOCK_WAIT=600
apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" "$@"
}

apt_update() {
    local deadline=$((SECONDS + APT_LOCK_WAIT)) out told=false
    while ! out="$(apt_get update -q 2>&1)"; do
        if ((SECONDS < deadline)) && grep -q 'Could not get lock' <<<"$out"; then
            if ! $told; then
                say "apt is busy (unattended-upgrades or another apt holds its lock); waiting up to ${APT_LOCK_WAIT}s"
                told=true
            fi
            sleep 5
            continue
        fi
        printf '%s\n' "$out" >&2
        die "apt-get update failed (its output above)"
    done
    printf '%s\n' "$out"
}

create_user() {
    install -D -m 0644 "$script_dir/reelbox.sysusers" "$(p "$SYSUSERS_FILE")"
    if [[ -n "$root" ]]; then
        systemd-sysusers --root="$root" "$(p "$SYSUSERS_FILE")"
    else
        systemd-sysusers "$SYSUSERS_FILE"
    fi
    grep -q '^reelbox:' "$(p /etc/passwd)" || die "the reelbox user was not created"
    install -d -m 0750 "$(p "$DATA_DIR")"
    chown_reelbox "$(p "$DATA_DIR")"
    install -d -m 0750 "$(p "$CONF_DIR")"
    chown_reelbox "$(p "$CONF_DIR")" root
}

# chown PATH to reelbox (owner, or root:reelbox with a second argument) using the target's ids.
chown_reelbox() {
    local uid gid
    uid="$(awk -F: '$1 == "reelbox" { print $3 }' "$(p /etc/passwd)")"
    gid="$(awk -F: '$1 == "reelbox" { print $3 }' "$(p /etc/group)")"
    [[ -n "$uid" && -n "$gid" ]] || die "cannot find the reelbox user in $(p /etc/passwd)"
    if [[ "${2:-}" == root ]]; then
        chown "0:$gid" "$1"
    else
        chown "$uid:$gid" "$1"
    fi
}

# Find or build the binary; prints its path.
obtain_binary() {
    if [[ -n "$binary" ]]; then
        [[ -f "$binary" && -x "$binary" ]] || die "--binary $binary is not an executable file"
        printf '%s' "$binary"
        return
    fi
    if [[ -n "$release_url" ]]; then
        [[ "$release_url" == https://* ]] || die "--release-url must be an https:// address"
        [[ "$release_sha256" =~ ^[0-9a-f]{64}$ ]] \
            || die "--release-url needs --release-sha256 HEX (the binary's SHA-256, 64 hex digits, published with the release)"
        local tmp="$download_dir" got
        say "downloading $release_url" >&2
        curl --fail --location --proto '=https' --proto-redir '=https' --tlsv1.2 --silent --show-error \
            -o "$tmp/reelbox" "$release_url" || die "cannot download $release_url"
        got="$(sha256sum "$tmp/reelbox" | awk '{ print $1 }')"
        if [[ "$got" != "$release_sha256" ]]; then
            rm -f -- "$tmp/reelbox"
            die "the download from $release_url has SHA-256 $got, not the expected $release_sha256; nothing was installed (a damaged or wrong file: check the URL and the checksum)"
        fi
        say "checked the download: SHA-256 $got" >&2
        chmod 0755 "$tmp/reelbox"
        printf '%s' "$tmp/reelbox"
        return
    fi
    local checkout
    checkout="$(cd -- "$script_dir/.." && pwd)"
    if [[ -f "$checkout/Cargo.toml" ]] && grep -q '^name = "reelbox"' "$checkout/Cargo.toml"; then
        command -v cargo >/dev/null \
            || die "no --binary given and cargo is not installed to build $checkout (install Rust, or pass --binary PATH)"
        local target="${CARGO_TARGET_DIR:-$checkout/target}"
        say "building reelbox from $checkout (cargo build --release --locked)" >&2
        (cd "$checkout" && CARGO_TARGET_DIR="$target" cargo build --release --locked --bin reelbox >&2)
        printf '%s' "$target/release/reelbox"
        return
    fi
    die "no binary: pass --binary PATH or --release-url URL, or run me from a reelbox checkout"
}

install_binary() {
    local src="$1" version dir current previous
    version="$("$src" --version 2>/dev/null | awk '{ print $2 }')" \
        || die "$src does not run (reelbox --version failed)"
    [[ "$version" =~ ^[0-9A-Za-z.+~-]+$ ]] || die "$src reports an odd version '$version'"
    dir="$OPT_DIR/versions/$version"
    install -d -m 0755 "$(p "$OPT_DIR/versions")"
    if [[ -f "$(p "$dir/reelbox")" ]] && cmp -s "$src" "$(p "$dir/reelbox")"; then
        say "reelbox $version already installed in $dir"
    else
        # Build the version directory beside its final name, then rename: never half a binary.
        local staging
        staging="$(p "$OPT_DIR/versions/.$version.new")"
        rm -rf "$staging"
        install -d -m 0755 "$staging"
        install -m 0755 "$src" "$staging/reelbox"
        rm -rf "$(p "$dir.old")"
        [[ -e "$(p "$dir")" ]] && mv "$(p "$dir")" "$(p "$dir.old")"
        mv "$staging" "$(p "$dir")"
        rm -rf "$(p "$dir.old")"
        say "installed reelbox $version in $dir"
    fi
    current="$(readlink "$(p "$OPT_DIR/current")" 2>/dev/null || true)"
    if [[ -n "$current" && "$current" != "versions/$version" ]]; then
        previous="$current"
        swap_link "$(p "$OPT_DIR/previous")" "$previous"
        say "previous version $previous kept for --rollback"
    fi
    swap_link "$(p "$OPT_DIR/current")" "versions/$version"
    install -d -m 0755 "$(p /usr/local/bin)"
    swap_link "$(p "$BIN_LINK")" "$OPT_DIR/current/reelbox"
    installed_version="$version"
}

# Point LINK at TARGET in one rename, so there is no moment without a link.
swap_link() {
    local link="$1" target="$2"
    ln -sfn "$target" "$link.new"
    mv -Tf "$link.new" "$link"
}

valid_hostname() {
    local h="$1"
    [[ ${#h} -le 253 && "$h" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]
}

ask() {
    local prompt="$1" default="${2:-}" answer
    if [[ -n "$default" ]]; then prompt="$prompt [$default]"; fi
    read -r -p "$prompt: " answer || die "no answer to '$1'"
    printf '%s' "${answer:-$default}"
}

# Decide the configuration from flags, prompts or the existing file.
gather_settings() {
    local conf
    conf="$(p "$CONF_FILE")"
    if [[ -z "$hostname_arg$admin_email$tls_mode$cert_file$key_file" && -f "$conf" ]]; then
        say "keeping the existing $CONF_FILE (pass --hostname/--tls/... to rewrite it)"
        write_config=false
        return
    fi
    write_config=true
    if [[ -z "$hostname_arg" ]]; then
        $interactive || die "--hostname is required when not run in a terminal (e.g. --hostname media.school.example)"
        hostname_arg="$(ask "Host name people will use (DNS must point at this server)" "$(hostname -f 2>/dev/null || true)")"
    fi
    valid_hostname "$hostname_arg" || die "--hostname '$hostname_arg' is not a host name (e.g. media.school.example)"
    if [[ -z "$tls_mode" ]]; then
        if $interactive; then
            tls_mode="$(ask "Certificates: acme (automatic, server reachable from the internet), files (your own) or self-signed" acme)"
        else
            tls_mode=acme
        fi
    fi
    case "$tls_mode" in
        acme)
            if [[ -z "$admin_email" ]]; then
                $interactive || die "--admin-email is required with --tls acme (the certificate authority's contact for expiry warnings)"
                admin_email="$(ask "Administrator e-mail (certificate expiry warnings)")"
            fi
            ;;
        files)
            if [[ -z "$cert_file" ]]; then
                $interactive || die "--tls files needs --cert FILE and --key FILE (PEM)"
                cert_file="$(ask "Certificate chain file (PEM)")"
            fi
            if [[ -z "$key_file" ]]; then
                $interactive || die "--tls files needs --key FILE (PEM)"
                key_file="$(ask "Private key file (PEM)")"
            fi
            [[ -r "$cert_file" ]] || die "--cert $cert_file cannot be read"
            [[ -r "$key_file" ]] || die "--key $key_file cannot be read"
            grep -q -- '-----BEGIN CERTIFICATE-----' "$cert_file" || die "--cert $cert_file is not a PEM certificate"
            grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$key_file" || die "--key $key_file is not a PEM private key"
            ;;
        self-signed) ;;
        *) die "--tls must be acme, files or self-signed, got '$tls_mode'" ;;
    esac
    if [[ -n "$admin_email" && ! "$admin_email" =~ ^[^@[:space:]\"]+@[^@[:space:]\"]+\.[^@[:space:]\"]+$ ]]; then
        die "--admin-email '$admin_email' is not an e-mail address"
    fi
    if [[ "$tls_mode" != files && -n "$cert_file$key_file" ]]; then
        die "--cert and --key only go with --tls files"
    fi
}

# The configuration file. Keys: see installer/reelbox.example.toml.
render_config() {
    printf '# /etc/reelbox/reelbox.toml, written by installer/install.sh on %s.\n' "$(date -u +%Y-%m-%d)"
    printf '# Re-running the installer with --hostname/--tls rewrites it (the old one is kept as .bak).\n\n'
    printf 'data_dir = "%s"\n' "$DATA_DIR"
    printf 'public_url = "https://%s"\n' "$hostname_arg"
    printf '\n[tls]\n'
    printf 'mode = "%s"\n' "$tls_mode"
    printf '# HTTPS on 443; plain HTTP on 80 only redirects to it (and lets ACME reach us).\n'
    printf 'https = "[::]:443"\n'
    printf 'http = "[::]:80"\n'
    printf 'domains = ["%s"]\n' "$hostname_arg"
    if [[ -n "$admin_email" ]]; then printf 'acme_contact = ["%s"]\n' "$admin_email"; fi
    if [[ "$tls_mode" == files ]]; then
        printf 'cert_file = "%s/tls/files/cert.pem"\n' "$CONF_DIR"
        printf 'key_file = "%s/tls/files/key.pem"\n' "$CONF_DIR"
    fi
}

install_config() {
    $write_config || return 0
    local conf tmp
    conf="$(p "$CONF_FILE")"
    if [[ "$tls_mode" == files ]]; then
        # Copies the service can read; replace these files to renew (the server reloads them).
        install -d -m 0750 "$(p "$CONF_DIR/tls")" "$(p "$CONF_DIR/tls/files")"
        chown_reelbox "$(p "$CONF_DIR/tls")" root
        chown_reelbox "$(p "$CONF_DIR/tls/files")" root
        install -m 0644 "$cert_file" "$(p "$CONF_DIR/tls/files/cert.pem")"
        install -m 0640 "$key_file" "$(p "$CONF_DIR/tls/files/key.pem")"
        chown_reelbox "$(p "$CONF_DIR/tls/files/key.pem")" root
    fi
    tmp="$conf.new"
    render_config >"$tmp"
    chmod 0640 "$tmp"
    chown_reelbox "$tmp" root
    if [[ -f "$conf" ]] && cmp -s "$tmp" "$conf"; then
        rm -f "$tmp"
    else
        [[ -f "$conf" ]] && cp -p "$conf" "$conf.bak"
        mv -f "$tmp" "$conf"
    fi
    say "configuration: $CONF_FILE (https://$hostname_arg, tls $tls_mode)"
}

check_config() {
    # The installed binary judges the file it will run with; in an image root the data
    # directory of the host is not touched (--data points into the root).
    local out
    if ! out="$("$(p "$OPT_DIR/current/reelbox")" config check --config "$(p "$CONF_FILE")" --data "$(p "$DATA_DIR")" 2>&1)"; then
        die "the configuration $CONF_FILE is refused: $out"
    fi
}

install_unit() {
    install -D -m 0644 "$script_dir/reelbox.service" "$(p "$UNIT_FILE")"
    if [[ -n "$root" ]]; then
        systemctl --root="$root" enable reelbox.service >/dev/null 2>&1 \
            || die "systemctl --root=$root enable reelbox.service failed"
    else
        systemctl daemon-reload
        systemctl enable reelbox.service >/dev/null 2>&1
    fi
    say "service: $UNIT_FILE (enabled)"
}

install_firewall() {
    if ! $firewall; then
        say "firewall: skipped (--no-firewall); open TCP 80, 443 and 1935 yourself"
        return
    fi
    local rules tmp
    rules="$(p "$NFT_FILE")"
    tmp="$rules.new"
    sed "s/tcp dport 22 accept/tcp dport $ssh_port accept/" "$script_dir/reelbox.nft" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$rules"
    command -v nft >/dev/null || die "nft is not installed (apt-get install nftables), or pass --no-firewall"
    nft -c -f "$rules" || die "the firewall rules in $NFT_FILE do not load (nft -c)"
    local main_conf
    main_conf="$(p /etc/nftables.conf)"
    if [[ ! -f "$main_conf" ]]; then
        printf '#!/usr/sbin/nft -f\n' >"$main_conf"
        chmod 0755 "$main_conf"
    fi
    grep -qxF "$NFT_INCLUDE" "$main_conf" || printf '\n# reelbox (installer/install.sh)\n%s\n' "$NFT_INCLUDE" >>"$main_conf"
    if [[ -n "$root" ]]; then
        systemctl --root="$root" enable nftables.service >/dev/null 2>&1 || warn "cannot enable nftables.service in $root"
        say "firewall: $NFT_FILE checked, loaded at boot"
    else
        nft -f "$rules"
        systemctl enable nftables.service >/dev/null 2>&1 || warn "cannot enable nftables.service; rules load only until reboot"
        say "firewall: only SSH ($ssh_port), 80, 443 and 1935 are open"
    fi
}

start_service() {
    $start || return 0
    local since
    since="$(date '+%Y-%m-%d %H:%M:%S')"
    say "starting reelbox"
    # Type=notify: restart returns once the server said READY=1 (migrated and listening).
    systemctl restart reelbox.service || {
        journalctl -u reelbox.service -n 30 --no-pager >&2 || true
        die "reelbox did not start; the log above says why (journalctl -u reelbox)"
    }
    wait_healthz
    print_first_run "$since"
}

wait_healthz() {
    local deadline=$((SECONDS + healthz_timeout))
    while ((SECONDS < deadline)); do
        # --insecure: the certificate may be self-signed or not issued yet; this checks the
        # server, not the certificate. --resolve keeps SNI and Host right for ACME names.
        if curl --silent --fail --insecure --max-time 5 \
            --resolve "$hostname_for_check:443:127.0.0.1" \
            "https://$hostname_for_check/healthz" >/dev/null 2>&1; then
            say "reelbox answers on https://$hostname_for_check/healthz"
            return
        fi
        systemctl is-active --quiet reelbox.service || {
            journalctl -u reelbox.service -n 30 --no-pager >&2 || true
            die "reelbox stopped after starting; the log above says why"
        }
        sleep 2
    done
    warn "no answer from https://$hostname_for_check/healthz within ${healthz_timeout}s."
    warn "With --tls acme the certificate is issued once DNS for $hostname_for_check points here and"
    warn "ports 80/443 are reachable from the internet; see: journalctl -u reelbox"
}

print_first_run() {
    local since="$1" url
    url="$(journalctl -u reelbox.service --since "$since" -o cat --no-pager 2>/dev/null \
        | grep -o 'https\?://[^ ]*/setup?token=[A-Za-z0-9_-]*' | tail -n 1 || true)"
    echo
    if [[ -n "$url" ]]; then
        say "open this link within the hour to create the first administrator:"
        echo "  $url"
    elif journalctl -u reelbox.service --since "$since" -o cat --no-pager 2>/dev/null | grep -q 'Sign in at'; then
        say "reelbox is running: sign in at https://$hostname_for_check/login"
    else
        say "create the first administrator with:"
        echo "  sudo -u reelbox reelbox user add --username admin --admin --password-stdin"
    fi
}

rollback() {
    local previous current
    previous="$(readlink "$(p "$OPT_DIR/previous")" 2>/dev/null || true)"
    [[ -n "$previous" && -x "$(p "$OPT_DIR/$previous/reelbox")" ]] || die "no previous version to roll back to"
    current="$(readlink "$(p "$OPT_DIR/current")")"
    swap_link "$(p "$OPT_DIR/current")" "$previous"
    swap_link "$(p "$OPT_DIR/previous")" "$current"
    say "switched from $current to $previous"
    if $start; then
        systemctl restart reelbox.service
        say "reelbox restarted"
    fi
}

uninstall() {
    if [[ -z "$root" ]]; then
        systemctl disable --now reelbox.service >/dev/null 2>&1 || true
    else
        systemctl --root="$root" disable reelbox.service >/dev/null 2>&1 || true
    fi
    rm -f "$(p "$UNIT_FILE")"
    [[ -n "$root" ]] || systemctl daemon-reload
    if [[ -f "$(p /etc/nftables.conf)" ]]; then
        local main_conf
        main_conf="$(p /etc/nftables.conf)"
        grep -vxF -e "$NFT_INCLUDE" -e '# reelbox (installer/install.sh)' "$main_conf" >"$main_conf.new" || true
        cat "$main_conf.new" >"$main_conf"
        rm -f "$main_conf.new"
    fi
    if [[ -z "$root" ]] && command -v nft >/dev/null; then
        nft delete table inet reelbox 2>/dev/null || true
    fi
    rm -f "$(p "$BIN_LINK")"
    rm -rf "$(p "$OPT_DIR")" "$(p "$CONF_DIR")"
    if $purge; then
        rm -rf "$(p "$DATA_DIR")"
        rm -f "$(p "$SYSUSERS_FILE")"
        if grep -q '^reelbox:' "$(p /etc/passwd)" 2>/dev/null; then
            if [[ -n "$root" ]]; then userdel --root "$root" reelbox; else userdel reelbox; fi
        fi
        say "removed reelbox and its data"
    else
        say "removed reelbox; the data in $DATA_DIR and the reelbox user are kept (--purge deletes them)"
    fi
}

main() {
    parse_args "$@"
    check_root
    case "$action" in
        uninstall) uninstall; return ;;
        rollback) rollback; return ;;
    esac
    check_os
    gather_settings
    install_packages
    # Before anything is created: a download that fails its checksum leaves the system as it was.
    local binary_src
    if [[ -n "$release_url" ]]; then
        download_dir="$(mktemp -d)"
        trap 'rm -rf -- "$download_dir"' EXIT
    fi
    binary_src="$(obtain_binary)"
    create_user
    install_binary "$binary_src"
    install_config
    check_config
    install_unit
    install_firewall
    hostname_for_check="$hostname_arg"
    if [[ -z "$hostname_for_check" ]]; then
        hostname_for_check="$(sed -n 's/^public_url = "https:\/\/\([^"]*\)".*/\1/p' "$(p "$CONF_FILE")" | head -n 1)"
        hostname_for_check="${hostname_for_check:-localhost}"
    fi
    start_service
    if ! $start; then
        say "installed reelbox $installed_version; start it with: systemctl start reelbox"
    fi
}

write_config=false
installed_version=""
hostname_for_check=""
main "$@"
