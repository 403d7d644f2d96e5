#!/usr/bin/env bash
# Install reelbox for real on Ubuntu 22.04 (jammy) and 24.04 (noble), outside CI.
#
# For each release: a minimal root file system from Ubuntu's own archive (debootstrap, Release
# signature checked against the pinned Ubuntu archive key; cached as a tarball), booted with
# systemd as PID 1 in systemd-nspawn on a private network namespace (loopback only; apt reaches
# the archive through a forward the script sets up). Inside it, install.sh runs as root the way
# a school's IT lead runs it; then the script checks /healthz over HTTPS, the unit's state and
# confinement, `reelbox doctor`, an upload that the confined service transcodes with Ubuntu's
# ffmpeg, a second (idempotent) install run, --uninstall and --uninstall --purge.
set -euo pipefail

readonly PROG="ubuntu-test.sh"
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly here
checkout="$(cd -- "$here/.." && pwd)"
readonly checkout

readonly MIRROR="http://archive.ubuntu.com/ubuntu"
# The archive signing key comes from the ubuntu-keyring package in noble's release pocket (a
# file that never changes there). The download is checked against its SHA-256, and the key
# taken from it must have this fingerprint: "Ubuntu Archive Automatic Signing Key (2018)
# <ftpmaster@ubuntu.com>", which signs the jammy and noble Release files.
readonly KEYRING_DEB="pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb"
readonly KEYRING_DEB_SHA256="36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8"
readonly KEYRING_MEMBER="etc/apt/trusted.gpg.d/ubuntu-keyring-2018-archive.gpg"
readonly ARCHIVE_KEY_FPR="F6ECB3762474EDA9D21B7022871920D1991BC93C"
readonly PACKAGES="systemd,systemd-sysv,dbus,ca-certificates,curl"
readonly TEST_HOST="reelbox-test.school.example"
readonly APT_PROXY_PORT=3142

releases=(jammy noble)
binary="$checkout/target/release/reelbox"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/reelbox-ubuntu"
refresh=false
keep=false
transcode_timeout=300

usage() {
    cat <<'EOF'
Usage: installer/ubuntu-test.sh [options]        (as root, on a Debian 12 host)

Installs reelbox with installer/install.sh on Ubuntu 22.04 (jammy) and 24.04 (noble), each
booted with systemd as PID 1 in systemd-nspawn, and checks: /healthz over HTTPS, the service
active and confined by its unit, `reelbox doctor`, an uploaded clip transcoded to renditions
by the service with Ubuntu's ffmpeg, a second install run, --uninstall and --uninstall --purge.
Prints each step with its time; exits non-zero at the first failure, naming it.

Options:
  --release NAME   jammy, noble or all (default all); may be repeated
  --binary PATH    the reelbox binary to install (default target/release/reelbox)
  --cache DIR      where the keyring and the root file system tarballs are kept
                   (default ~/.cache/reelbox-ubuntu; the first run debootstraps, later runs unpack)
  --refresh        debootstrap again even when a cached tarball exists
  --keep           keep the unpacked root after the run (under /var/tmp) for inspection
  --transcode-timeout SEC   how long the upload may take to become ready (default 300)
  -h, --help       show this help

Needs (Debian 12): debootstrap systemd-container socat zstd gnupg curl jq openssl util-linux
Network: http://archive.ubuntu.com/ubuntu (the containers reach it through a forward on
127.0.0.1:3142 inside their own network namespace; nothing listens on the host's ports).
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
    printf '%s: FAILED%s: %s\n' "$PROG" "${current:+ ($current)}" "$*" >&2
    exit 1
}

selected=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release)
            [[ $# -ge 2 ]] || die "--release needs jammy, noble or all"
            case "$2" in
                jammy | noble) selected+=("$2") ;;
                all) selected+=(jammy noble) ;;
                *) die "--release must be jammy, noble or all, got '$2'" ;;
            esac
            shift 2
            ;;
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        --cache) cache="${2:?--cache needs a directory}"; shift 2 ;;
        --transcode-timeout) transcode_timeout="${2:?--transcode-timeout needs seconds}"; shift 2 ;;
        --refresh) refresh=true; shift ;;
        --keep) keep=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
((${#selected[@]} == 0)) || releases=("${selected[@]}")
[[ "$transcode_timeout" =~ ^[0-9]+$ ]] || die "--transcode-timeout must be a number of seconds"

[[ "$(id -u)" == 0 ]] || die "run me as root (debootstrap and systemd-nspawn need it)"
for tool in debootstrap systemd-nspawn nsenter socat zstd gpg curl jq openssl dpkg-deb sha256sum; do
    command -v "$tool" >/dev/null \
        || die "$tool is missing: apt-get install debootstrap systemd-container socat zstd gnupg curl jq openssl"
done
[[ -x "$binary" ]] || die "no reelbox binary at $binary (build it, or pass --binary PATH)"
binary="$(cd -- "$(dirname -- "$binary")" && pwd)/$(basename -- "$binary")"
mkdir -p "$cache"
cache="$(cd -- "$cache" && pwd)"

# Per-release state, reset by run_release.
current=""
rel=""
work=""
root=""
nspawn_pid=""
leader=""
proxy_pids=()
step_names=()
step_secs=()
step_started=""
release_started=""

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# Close the step running now (recording its time) and start the next one.
step() {
    end_step
    current="$rel: $1"
    step_started="$(now)"
    say "[$rel +$(elapsed "$release_started") s] $1"
}

end_step() {
    if [[ -n "$step_started" ]]; then
        step_names+=("${current#"$rel: "}")
        step_secs+=("$(elapsed "$step_started")")
        step_started=""
    fi
}

# A command inside the container: all its namespaces, a clean root environment, no stdin.
in_ct() {
    nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup --root --wd -- \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 TERM=dumb "$@" </dev/null
}

# A host program (curl) in the container's network namespace: the service seen from outside.
in_net() {
    nsenter --target "$leader" --net -- "$@" </dev/null
}

https() {
    in_net curl --silent --show-error --fail --insecure --max-time 20 \
        --resolve "$TEST_HOST:443:127.0.0.1" "$@"
}

stop_container() {
    if [[ -n "$nspawn_pid" ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
        if [[ -n "$leader" ]]; then in_ct systemctl poweroff >/dev/null 2>&1 || true; fi
        local i
        for ((i = 0; i < 60; i++)); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep 1
        done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            say "the container did not power off within 60 s; killing systemd-nspawn ($nspawn_pid)"
            kill -KILL "$nspawn_pid" 2>/dev/null || true
        fi
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    nspawn_pid=""
    leader=""
    local pid
    for pid in "${proxy_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    proxy_pids=()
    # systemd-nspawn leaves its mount propagation directory behind when /run is not a tmpfs.
    rm -rf "/run/systemd/nspawn/propagate/reelbox-$rel"
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local status=$?
    stop_container
    if [[ -n "$work" && -d "$work" ]]; then
        if $keep; then
            say "kept $work (the unpacked root is $root)"
        else
            rm -rf --one-file-system "$work"
        fi
    fi
    if ((status != 0)); then
        if [[ -n "$current" ]]; then
            printf '%s: FAILED at step "%s" (exit %s)\n' "$PROG" "$current" "$status" >&2
        else
            printf '%s: FAILED (exit %s)\n' "$PROG" "$status" >&2
        fi
    fi
}
trap cleanup EXIT

# --- The archive key ---------------------------------------------------------------------

archive_keyring() {
    local deb="$cache/${KEYRING_DEB##*/}" key="$cache/ubuntu-archive-2018.gpg" got tmp fprs
    if [[ ! -f "$deb" ]]; then
        curl --silent --show-error --fail -o "$deb.part" "$MIRROR/$KEYRING_DEB" \
            || die "cannot download $MIRROR/$KEYRING_DEB"
        mv "$deb.part" "$deb"
    fi
    got="$(sha256sum "$deb" | awk '{ print $1 }')"
    if [[ "$got" != "$KEYRING_DEB_SHA256" ]]; then
        rm -f "$deb"
        die "${deb##*/} has SHA-256 $got, not the pinned $KEYRING_DEB_SHA256 (removed; run again)"
    fi
    tmp="$(mktemp -d)"
    dpkg-deb -x "$deb" "$tmp/x"
    install -d -m 0700 "$tmp/gnupg"
    [[ -f "$tmp/x/$KEYRING_MEMBER" ]] || die "${deb##*/} has no $KEYRING_MEMBER"
    # Only primary-key fingerprints (the line after each "pub"); a throwaway GNUPGHOME.
    fprs="$(GNUPGHOME="$tmp/gnupg" gpg --batch --show-keys --with-colons "$tmp/x/$KEYRING_MEMBER" 2>/dev/null \
        | awk -F: '$1 == "pub" { want = 1; next } want && $1 == "fpr" { print $10; want = 0 }')"
    if [[ "$fprs" != "$ARCHIVE_KEY_FPR" ]]; then
        rm -rf "$tmp"
        die "the key in ${deb##*/} has fingerprint(s) '${fprs//$'\n'/ }', not the pinned $ARCHIVE_KEY_FPR"
    fi
    install -m 0644 "$tmp/x/$KEYRING_MEMBER" "$key"
    rm -rf "$tmp"
    printf '%s' "$key"
}

# --- The root file system ----------------------------------------------------------------

rootfs_tarball() {
    local key="$1" tarball="$cache/$rel-minbase.tar.zst" build log script=()
    if [[ -f "$tarball" ]] && ! $refresh; then
        say "using the cached $tarball ($(du -h "$tarball" | cut -f1), made $(date -r "$tarball" -u '+%Y-%m-%d %H:%M UTC'))"
        return
    fi
    if [[ "$rel" == noble ]]; then
        # Debian 12's debootstrap has no noble script; Ubuntu's own links it to gutsy's.
        [[ -f /usr/share/debootstrap/scripts/gutsy ]] || die "debootstrap has no gutsy script for noble"
        script=(/usr/share/debootstrap/scripts/gutsy)
    fi
    build="$work/debootstrap"
    log="$work/debootstrap.log"
    say "debootstrap --variant=minbase $rel (log: $log)"
    if ! nice debootstrap --variant=minbase --include="$PACKAGES" --keyring="$key" \
        "$rel" "$build" "$MIRROR" "${script[@]}" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        [[ -f "$build/debootstrap/debootstrap.log" ]] && tail -n 20 "$build/debootstrap/debootstrap.log" >&2
        die "debootstrap $rel failed (the lines above)"
    fi
    grep -q "Valid Release signature (key id $ARCHIVE_KEY_FPR)" "$log" \
        || die "debootstrap did not report a Release signature by $ARCHIVE_KEY_FPR (see $log)"
    say "Release signature checked: key $ARCHIVE_KEY_FPR"
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$build" -c . | zstd -q -T1 -o "$tarball.part"
    mv -f "$tarball.part" "$tarball"
    rm -rf --one-file-system "$build"
    say "cached $tarball ($(du -h "$tarball" | cut -f1))"
}

# What a real Ubuntu server has that minbase does not: its host name and the usual pockets.
configure_root() {
    printf 'reelbox-test\n' >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 %s reelbox-test\n::1 localhost ip6-localhost ip6-loopback\n' \
        "$TEST_HOST" >"$root/etc/hosts"
    if [[ "$rel" == noble ]]; then
        # 24.04's own layout: deb822 sources, the old file left empty.
        printf '# Ubuntu sources are in /etc/apt/sources.list.d/ubuntu.sources\n' >"$root/etc/apt/sources.list"
        cat >"$root/etc/apt/sources.list.d/ubuntu.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: noble noble-updates noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
EOF
    else
        local pocket
        for pocket in "$rel" "$rel-updates" "$rel-security"; do
            printf 'deb %s %s main restricted universe multiverse\n' "$MIRROR" "$pocket"
        done >"$root/etc/apt/sources.list"
    fi
    # The only way out of the container's network namespace: an HTTP proxy on its loopback.
    printf 'Acquire::http::Proxy "http://127.0.0.1:%s/";\n' "$APT_PROXY_PORT" \
        >"$root/etc/apt/apt.conf.d/01reelbox-test-proxy"
    rm -f "$root/etc/machine-id"
    : >"$root/etc/machine-id"
    install -d -m 0700 "$root/root/reelbox-src"
    cp -a "$checkout/installer" "$root/root/reelbox-src/installer"
    install -m 0755 "$binary" "$root/root/reelbox-src/reelbox"
}

# --- Boot ----------------------------------------------------------------------------------

boot() {
    # The archive forward: host side on a Unix socket in the work directory, container side on
    # 127.0.0.1:3142 in the container's own network namespace (started once it exists).
    socat "UNIX-LISTEN:$work/apt.sock,fork,mode=600" "TCP:archive.ubuntu.com:80" 2>>"$work/proxy.log" &
    proxy_pids+=($!)
    # --register=no --keep-unit: this host's PID 1 is not systemd (no machined, no scopes).
    systemd-nspawn --quiet --register=no --keep-unit --timezone=off --private-network \
        --machine="reelbox-$rel" --directory="$root" --boot >"$work/console.log" 2>&1 </dev/null &
    nspawn_pid=$!
    local i pid
    for ((i = 0; i < 300; i++)); do
        kill -0 "$nspawn_pid" 2>/dev/null || { tail -n 30 "$work/console.log" >&2; die "systemd-nspawn exited"; }
        for pid in $(pgrep -P "$nspawn_pid" || true); do
            if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == systemd ]]; then leader="$pid"; fi
        done
        [[ -n "$leader" ]] && break
        sleep 0.1
    done
    [[ -n "$leader" ]] || die "no systemd inside the container after 30 s (see $work/console.log)"
    # nsenter directly (not through a function) so that $! is the socat it becomes.
    nsenter --target "$leader" --net -- \
        socat "TCP-LISTEN:$APT_PROXY_PORT,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$work/apt.sock" \
        </dev/null 2>>"$work/proxy.log" &
    proxy_pids+=($!)
    local state=""
    for ((i = 0; i < 120; i++)); do
        state="$(in_ct systemctl is-system-running 2>/dev/null || true)"
        case "$state" in
            running | degraded) break ;;
        esac
        sleep 1
    done
    case "$state" in
        running) say "systemd $(in_ct systemctl --version | awk 'NR == 1 { print $2 }') is PID 1; the system is running" ;;
        degraded)
            say "systemd is PID 1; the system is degraded before the install, failed units:"
            in_ct systemctl --failed --no-legend --plain | sed 's/^/    /'
            ;;
        *) tail -n 30 "$work/console.log" >&2; die "the container did not finish booting (state '$state')" ;;
    esac
}

# --- The checks ----------------------------------------------------------------------------

run_installer() {
    local log="$1"
    shift
    if ! in_ct bash /root/reelbox-src/installer/install.sh --binary /root/reelbox-src/reelbox "$@" >"$log" 2>&1; then
        sed 's/^/    | /' "$log" >&2
        die "install.sh $* failed (its output above)"
    fi
    sed 's/^/    | /' "$log"
}

# What apt-daily and unattended-upgrades do on a freshly booted server: hold apt's lists lock
# for LISTS seconds and dpkg's locks for DPKG seconds (fcntl write locks, as apt takes them).
# Returns once all are held; $lock_holder is the holder's pid.
hold_apt_locks() {
    local lists="$1" dpkg="$2" i
    rm -f "$root/root/apt-busy"
    # nsenter directly (not through in_ct) so that $! is the holder itself.
    # shellcheck disable=SC2016  # Perl, not shell
    nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup --root --wd -- \
        env -i PATH=/usr/bin:/bin perl -e 'use Fcntl qw(F_SETLK F_WRLCK O_RDWR O_CREAT);
        my ($lists, $dpkg, @paths) = @ARGV; my %held;
        for my $p (@paths) {
            sysopen(my $f, $p, O_RDWR | O_CREAT, 0640) or die "$p: $!\n";
            my $lock = pack("s s x4 q q l x4", F_WRLCK, 0, 0, 0, 0);  # struct flock, whole file
            fcntl($f, F_SETLK, $lock) or die "lock $p: $!\n";
            $held{$p} = $f;
        }
        open(my $m, ">", "/root/apt-busy") or die; close $m;
        sleep $lists; close $held{"/var/lib/apt/lists/lock"};
        sleep $dpkg - $lists;' \
        "$lists" "$dpkg" /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock \
        </dev/null >>"$work/lock-holder.log" 2>&1 &
    lock_holder=$!
    for ((i = 0; i < 100; i++)); do
        [[ -f "$root/root/apt-busy" ]] && return 0
        kill -0 "$lock_holder" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/lock-holder.log" >&2
    die "could not take apt's locks in the container"
}

install_args=(--hostname "$TEST_HOST" --admin-email it@school.example --tls self-signed --non-interactive)

check_service() {
    local body
    [[ "$(in_ct systemctl is-active reelbox.service || true)" == active ]] \
        || { in_ct journalctl -u reelbox.service -n 30 --no-pager >&2 || true; die "reelbox.service is not active"; }
    body="$(https "https://$TEST_HOST/healthz")" || die "no answer from https://$TEST_HOST/healthz"
    say "healthz over HTTPS (from the host, in the container's network): $body"
    jq -e . >/dev/null <<<"$body" || die "/healthz did not answer JSON: $body"
}

check_confinement() {
    local pid status redirect
    pid="$(in_ct systemctl show -p MainPID --value reelbox.service)"
    [[ "$pid" =~ ^[1-9][0-9]*$ ]] || die "reelbox.service has no main process"
    status="$(in_ct cat "/proc/$pid/status")"
    say "the service process: uid $(awk '/^Uid:/ { print $2 }' <<<"$status")," \
        "$(grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters):' <<<"$status" | tr -s '\t ' ' ' | paste -sd ',' -)," \
        "$(grep '^CapEff:' <<<"$status" | tr -s '\t ' ' ')"
    grep -q '^NoNewPrivs:[[:space:]]*1' <<<"$status" || die "the service runs without NoNewPrivs"
    grep -q '^Seccomp:[[:space:]]*2' <<<"$status" || die "the service runs without a seccomp filter"
    # CAP_NET_BIND_SERVICE (bit 10) and nothing else.
    grep -q '^CapEff:[[:space:]]*0000000000000400$' <<<"$status" || die "the service has capabilities beyond CAP_NET_BIND_SERVICE"
    in_ct systemctl show reelbox.service -p ProtectSystem -p MemoryDenyWriteExecute -p PrivateDevices \
        -p NoNewPrivileges -p RestrictNamespaces | paste -sd ' ' - | sed 's/^/    unit: /'
    if in_ct systemd-analyze --help >/dev/null 2>&1; then
        say "systemd-analyze security: $(in_ct systemd-analyze security reelbox.service --no-pager 2>/dev/null | tail -n 1)"
    fi
    redirect="$(in_net curl --silent --output /dev/null --write-out '%{http_code} %{redirect_url}' --max-time 10 \
        --resolve "$TEST_HOST:80:127.0.0.1" "http://$TEST_HOST/login")" || die "nothing answers on port 80"
    say "plain HTTP on 80 (/login): $redirect"
    [[ "$redirect" == 30[178]" https://$TEST_HOST/"* ]] || die "port 80 does not redirect to HTTPS: $redirect"
    in_ct nft list table inet reelbox >"$work/nft.txt" || die "the firewall table inet reelbox is not loaded"
    say "firewall: table inet reelbox loaded ($(grep -c accept "$work/nft.txt") accept rules)"
}

# `reelbox doctor` through `$@` (run in the container) must pass; its report is shown.
doctor_passes() {
    local who="$1" out
    shift
    if out="$(in_ct "$@" 2>&1)"; then
        printf '%s\n' "$out" | sed 's/^/    | /'
        say "reelbox doctor ($who): passed"
    else
        printf '%s\n' "$out" | sed 's/^/    | /' >&2
        die "reelbox doctor ($who) reported problems (above)"
    fi
}

check_doctor() {
    # As root, the way `sudo reelbox doctor` runs (a port in use by the service is a warning).
    doctor_passes root reelbox doctor
    # As the service user, the way the README runs the other commands. Without the unit's
    # CAP_NET_BIND_SERVICE it cannot bind 80/443 itself; it must see that the service holds them
    # (a warning), not report a failure.
    doctor_passes "as reelbox" runuser -u reelbox -- reelbox doctor
}

check_transcode() {
    local token category clip digest created id item status deadline renditions
    printf 'correct horse battery staple reelbox\n' \
        | nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup --root --wd -- \
            env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/ LANG=C.UTF-8 \
            runuser -u reelbox -- reelbox user add --username admin --admin --password-stdin >/dev/null \
        || die "reelbox user add failed"
    token="$(in_ct runuser -u reelbox -- reelbox token create --username admin)" || die "reelbox token create failed"
    [[ -n "$token" ]] || die "reelbox token create printed nothing"
    category="$(https -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        --data '{"name": "Ubuntu test"}' "https://$TEST_HOST/api/v1/categories" | jq -r .id)" \
        || die "cannot create a category through the API"
    # A 4 s 640x360 H.264/AAC clip, made by the container's (Ubuntu's) ffmpeg.
    clip=/root/clip.mp4
    in_ct ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 \
        -f lavfi -i sine=frequency=440:sample_rate=48000 -t 4 -c:v libx264 -pix_fmt yuv420p \
        -c:a aac -shortest -y "$clip" || die "Ubuntu's ffmpeg could not make the test clip"
    say "ffmpeg: $(in_ct ffmpeg -hide_banner -version | head -n 1)"
    digest="$(openssl dgst -sha256 -binary "$root$clip" | base64)"
    created="$(https -H "Authorization: Bearer $token" -H "Content-Digest: sha-256=:$digest:" \
        --data-binary "@$root$clip" "https://$TEST_HOST/api/v1/media?category=$category&filename=clip.mp4")" \
        || die "the upload was refused"
    id="$(jq -r .id <<<"$created")"
    [[ "$id" =~ ^[0-9]+$ ]] || die "the upload answered without an id: $created"
    say "uploaded clip.mp4 as item $id; waiting for the service to transcode it"
    deadline=$((SECONDS + transcode_timeout))
    while :; do
        item="$(https -H "Authorization: Bearer $token" "https://$TEST_HOST/api/v1/media/$id")" \
            || die "GET /api/v1/media/$id failed"
        status="$(jq -r .status <<<"$item")"
        [[ "$status" == ready || "$status" == failed ]] && break
        ((SECONDS < deadline)) || die "item $id not ready within ${transcode_timeout}s (status $status)"
        sleep 2
    done
    if [[ "$status" != ready ]]; then
        jq . <<<"$item" >&2
        in_ct journalctl -u reelbox.service -n 40 --no-pager >&2 || true
        die "the transcode failed (item above, journal below it)"
    fi
    renditions="$(jq -r '[.renditions[] | "\(.name) \(.width)x\(.height)"] | join(", ")' <<<"$item")"
    [[ -n "$renditions" ]] || die "item $id is ready without renditions: $item"
    say "item $id ready with renditions: $renditions"
    if in_ct journalctl -u reelbox.service --no-pager -o cat | grep -iE 'SIGSYS|seccomp|bad system call'; then
        die "the journal shows a blocked system call (above)"
    fi
    media_token="$token"
    media_id="$id"
}

check_reinstall() {
    run_installer "$work/install-2.log" "${install_args[@]}"
    grep -q 'already installed' "$work/install-2.log" || die "the second run did not find the installed binary"
    [[ -z "$(in_ct readlink /opt/reelbox/previous || true)" ]] || die "the second run of the same version made a 'previous' link"
    check_service
    local status
    status="$(https -H "Authorization: Bearer $media_token" "https://$TEST_HOST/api/v1/media/$media_id" | jq -r .status)" \
        || die "item $media_id is gone after the second run"
    [[ "$status" == ready ]] || die "item $media_id is '$status' after the second run"
    say "second run: binary kept, service active, item $media_id still ready"
}

check_uninstall() {
    run_installer "$work/uninstall.log" --uninstall
    [[ "$(in_ct systemctl is-active reelbox.service || true)" != active ]] || die "reelbox.service still runs after --uninstall"
    local gone
    for gone in /etc/systemd/system/reelbox.service /usr/local/bin/reelbox /opt/reelbox /etc/reelbox; do
        [[ ! -e "$root$gone" && ! -L "$root$gone" ]] || die "$gone is still there after --uninstall"
    done
    [[ -f "$root/var/lib/reelbox/reelbox.db" ]] || die "--uninstall removed the data in /var/lib/reelbox"
    grep -q '^reelbox:' "$root/etc/passwd" || die "--uninstall removed the reelbox user"
    ! in_ct nft list table inet reelbox >/dev/null 2>&1 || die "the firewall table is still loaded after --uninstall"
    say "--uninstall: unit, binary, configuration and rules gone; data and user kept"
    run_installer "$work/purge.log" --uninstall --purge
    [[ ! -e "$root/var/lib/reelbox" ]] || die "--purge left /var/lib/reelbox"
    ! grep -q '^reelbox:' "$root/etc/passwd" || die "--purge left the reelbox user"
    say "--uninstall --purge: data and user gone"
}

# --- One release ---------------------------------------------------------------------------

summaries=()

run_release() {
    rel="$1"
    release_started="$(now)"
    step_names=()
    step_secs=()
    step_started=""
    work="$(mktemp -d "/var/tmp/reelbox-ubuntu-$rel.XXXXXX")"
    root="$work/root"

    step "archive key ($ARCHIVE_KEY_FPR)"
    local key
    key="$(archive_keyring)"
    say "the archive key in $key has the pinned fingerprint"

    step "root file system (debootstrap or cache)"
    rootfs_tarball "$key"
    mkdir "$root"
    zstd -q -dc "$cache/$rel-minbase.tar.zst" | tar --numeric-owner --xattrs --xattrs-include='*' -x -C "$root"
    configure_root
    say "$(sed -n 's/^PRETTY_NAME=//p' "$root/etc/os-release" | tr -d '"') unpacked in $root"

    step "boot with systemd-nspawn --boot"
    boot

    # Like a server just after its first boot: apt's lists lock is held for 15 s and dpkg's for
    # 45 s (update waits, then install waits).
    step "install.sh (as root, packages from Ubuntu's archive; apt busy for its first 45 s)"
    hold_apt_locks 15 45
    run_installer "$work/install-1.log" "${install_args[@]}"
    wait "$lock_holder" || die "the lock holder failed: $(cat "$work/lock-holder.log")"
    grep -q 'apt is busy\|Waiting for cache lock.*/var/lib/apt/lists/lock' "$work/install-1.log" \
        || die "install.sh did not wait for apt's lists lock"
    grep -q 'Waiting for cache lock.*/var/lib/dpkg/lock' "$work/install-1.log" \
        || die "install.sh did not wait for dpkg's lock"
    say "install.sh waited for apt's lists lock and for dpkg's lock, then installed"
    grep -q "answers on https://$TEST_HOST/healthz" "$work/install-1.log" || die "install.sh did not see /healthz answer"
    grep -q "setup?token=" "$work/install-1.log" || die "install.sh printed no setup link"
    # shellcheck disable=SC2016  # dpkg-query's own ${...} fields
    say "ffmpeg package: $(in_ct dpkg-query -W -f '${Version} (${Status})' ffmpeg)"

    step "service, HTTPS and confinement"
    check_service
    check_confinement

    step "reelbox doctor"
    check_doctor

    step "upload and transcode through the service"
    check_transcode

    step "install.sh again (idempotent)"
    check_reinstall

    step "install.sh --uninstall, --uninstall --purge"
    check_uninstall

    step "power off and clean up"
    stop_container
    if $keep; then
        say "kept $work (the unpacked root is $root)"
    else
        rm -rf --one-file-system "$work"
    fi
    work=""
    end_step
    local total line i
    total="$(elapsed "$release_started")"
    line="$rel: passed in $total s ("
    for i in "${!step_names[@]}"; do
        line+="${step_names[$i]} ${step_secs[$i]} s; "
    done
    summaries+=("${line%; })")
    current=""
}

media_token=""
media_id=""
lock_holder=""
for r in "${releases[@]}"; do
    run_release "$r"
done
echo
for s in "${summaries[@]}"; do
    say "$s"
done
