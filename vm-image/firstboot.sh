#!/usr/bin/env bash
# First boot of the reelbox VM image (installed as /opt/reelbox/installer/firstboot.sh).
#
#   firstboot.sh configure   before reelbox starts, once: host name, SSH host keys, and the
#                            configuration through the installer (same code as a manual install)
#   firstboot.sh console     after reelbox starts, every boot: the setup link on the console
#
# The host name comes from, in order: the kernel command line (reelbox.hostname=NAME), a
# cloud-init NoCloud seed (a disk labelled CIDATA whose meta-data has `local-hostname: NAME`),
# the cloud metadata service (169.254.169.254), or stays "reelbox". The certificate mode comes
# from reelbox.tls= (acme, files, self-signed; default self-signed) and reelbox.email=.
set -euo pipefail

readonly INSTALLER=/opt/reelbox/installer/install.sh
readonly DONE=/var/lib/reelbox/.firstboot-done
readonly ISSUE=/etc/issue.d/reelbox.issue

log() { printf 'reelbox-firstboot: %s\n' "$*"; }

cmdline_value() {
    local word words
    read -r -a words </proc/cmdline
    for word in "${words[@]}"; do
        if [[ "$word" == "$1="* ]]; then
            printf '%s' "${word#*=}"
            return
        fi
    done
}

valid_hostname() {
    [[ ${#1} -le 253 && "$1" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]
}

# Copy meta-data and user-data of a NoCloud seed (a disk labelled CIDATA) into $1, if present.
read_seed() {
    local dev mnt
    dev="$(blkid -t LABEL=CIDATA -o device 2>/dev/null | head -n 1 || true)"
    [[ -n "$dev" ]] || dev="$(blkid -t LABEL=cidata -o device 2>/dev/null | head -n 1 || true)"
    [[ -n "$dev" ]] || return 0
    mnt="$(mktemp -d)"
    if mount -o ro "$dev" "$mnt" 2>/dev/null; then
        cp "$mnt/meta-data" "$mnt/user-data" "$1/" 2>/dev/null || true
        umount "$mnt"
    fi
    rmdir "$mnt"
}

hostname_from_seed() {
    [[ -f "$1/meta-data" ]] || return 0
    sed -n 's/^[[:space:]]*local-hostname:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*/\1/p' "$1/meta-data" | head -n 1
}

# SSH keys for root from the seed's user-data (`ssh_authorized_keys:` list entries): the only
# way in besides the hypervisor's console, as the image has no password.
keys_from_seed() {
    [[ -f "$1/user-data" ]] || return 0
    local keys
    keys="$(sed -n 's/^[[:space:]]*-[[:space:]]*["'\'']\{0,1\}\(\(ssh-\|ecdsa-\|sk-\)[^"'\'']*\).*/\1/p' "$1/user-data")"
    [[ -n "$keys" ]] || return 0
    install -d -m 0700 /root/.ssh
    printf '%s\n' "$keys" >>/root/.ssh/authorized_keys
    chmod 0600 /root/.ssh/authorized_keys
    log "$(printf '%s\n' "$keys" | wc -l) SSH key(s) for root from the cloud-init seed"
}

hostname_from_metadata() {
    curl --silent --fail --max-time 2 http://169.254.169.254/latest/meta-data/local-hostname 2>/dev/null || true
}

configure() {
    local name source tls email args seed
    seed="$(mktemp -d)"
    read_seed "$seed"
    keys_from_seed "$seed"
    name="$(cmdline_value reelbox.hostname)"
    source="kernel command line"
    if [[ -z "$name" ]]; then
        name="$(hostname_from_seed "$seed")"
        source="cloud-init seed"
    fi
    if [[ -z "$name" ]]; then
        name="$(hostname_from_metadata)"
        source="metadata service"
    fi
    if [[ -z "$name" ]] || ! valid_hostname "$name"; then
        [[ -z "$name" ]] || log "ignoring host name '$name' from the $source: not a host name"
        name="reelbox"
        source="default"
    fi
    rm -rf "$seed"
    log "host name $name (from the $source)"
    printf '%s\n' "${name%%.*}" >/etc/hostname
    hostname "${name%%.*}"
    if ! grep -q "[[:space:]]${name}\([[:space:]]\|$\)" /etc/hosts; then
        printf '127.0.1.1\t%s %s\n' "$name" "${name%%.*}" >>/etc/hosts
    fi

    # Secrets of this machine, never shared between copies of the image. reelbox creates its
    # own keys in /var/lib/reelbox when it first needs them.
    ssh-keygen -A >/dev/null
    log "SSH host keys generated"

    tls="$(cmdline_value reelbox.tls)"
    email="$(cmdline_value reelbox.email)"
    args=(--binary /opt/reelbox/current/reelbox --hostname "$name" --tls "${tls:-self-signed}"
        --no-start --non-interactive)
    [[ -z "$email" ]] || args+=(--admin-email "$email")
    "$INSTALLER" "${args[@]}"
    touch "$DONE"
}

console() {
    local url="" ip i
    # The link is printed once per start of the server; give it a little time.
    for ((i = 0; i < 60; i++)); do
        url="$(journalctl -b -u reelbox.service -o cat --no-pager 2>/dev/null \
            | grep -o 'https\?://[^ ]*/setup?token=[A-Za-z0-9_-]*' | tail -n 1 || true)"
        [[ -z "$url" ]] || break
        if journalctl -b -u reelbox.service -o cat --no-pager 2>/dev/null | grep -q 'Sign in at'; then
            break
        fi
        sleep 1
    done
    ip="$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n 1 || true)"
    mkdir -p /etc/issue.d
    {
        printf '\nreelbox is running on %s (address %s).\n' "$(hostname)" "${ip:-unknown}"
        if [[ -n "$url" ]]; then
            printf 'Create the first administrator within the hour at:\n  %s\n' "$url"
            if [[ -n "$ip" ]]; then
                printf '  (before DNS is set up: https://%s/%s)\n' "$ip" "${url#*://*/}"
            fi
        else
            printf 'Sign in at https://%s/login\n' "$(hostname -f 2>/dev/null || hostname)"
        fi
        printf '\n'
    } >"$ISSUE.new"
    mv -f "$ISSUE.new" "$ISSUE"
    cat "$ISSUE"
    agetty --reload 2>/dev/null || true
}

case "${1:-}" in
    configure) configure ;;
    console) console ;;
    *)
        echo "usage: firstboot.sh configure|console" >&2
        exit 2
        ;;
esac
