#!/usr/bin/env bash
# Boot the reelbox VM image under qemu (KVM when /dev/kvm is usable) on a throwaway overlay,
# with a cloud-init NoCloud seed naming the host, forward a local port to the VM's 443 and wait
# for /healthz over HTTPS. Prints the time from power-on to the first healthy answer.
set -euo pipefail

readonly PROG="boot-test.sh"
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly here

image="$here/../reelbox-debian12.qcow2"
port=8443
timeout=300
scheme=https
hostname_seed="reelbox-test.school.example"
memory=2048
uefi=false
accel_choice=auto
watch=0
ssh_check=false
ssh_port=2222

usage() {
    cat <<'EOF'
Usage: vm-image/boot-test.sh [IMAGE] [options]

Boots IMAGE (default ./reelbox-debian12.qcow2; left unchanged, writes go to an overlay) and
waits until https://127.0.0.1:PORT/healthz answers, then prints the elapsed time and the
setup link the VM showed on its console.

Options:
  --port PORT       local port forwarded to the VM's 443 (default 8443)
  --timeout SEC     give up after SEC seconds (default 300)
  --hostname NAME   host name handed to the VM through a NoCloud seed (default reelbox-test.school.example)
  --scheme http     probe plain HTTP on the forwarded port (a build without TLS)
  --memory MIB      VM memory (default 2048)
  --accel MODE      kvm, tcg (software) or auto (default: KVM when /dev/kvm works)
  --watch SEC       after the first answer, keep checking for SEC seconds that the service
                    stays up without a restart (uptime only grows: the systemd watchdog is fed)
  --ssh             put a throwaway SSH key in the seed, forward 127.0.0.1:2222 to the VM's 22
                    and show from inside: the service state, its restarts, the firewall and
                    systemd's exposure rating of the unit
  --uefi            boot through UEFI firmware (OVMF) instead of the BIOS (the image has both)
  -h, --help        show this help

Needs (Debian 12): qemu-system-x86 ovmf qemu-utils dosfstools mtools curl
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) port="${2:?--port needs a number}"; shift 2 ;;
        --timeout) timeout="${2:?--timeout needs seconds}"; shift 2 ;;
        --hostname) hostname_seed="${2:?--hostname needs a name}"; shift 2 ;;
        --scheme) scheme="${2:?--scheme needs http or https}"; shift 2 ;;
        --memory) memory="${2:?--memory needs MiB}"; shift 2 ;;
        --uefi) uefi=true; shift ;;
        --watch) watch="${2:?--watch needs seconds}"; shift 2 ;;
        --ssh) ssh_check=true; shift ;;
        --accel) accel_choice="${2:?--accel needs kvm, tcg or auto}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) image="$1"; shift ;;
    esac
done
[[ "$scheme" == https || "$scheme" == http ]] || die "--scheme must be https or http"
[[ -f "$image" ]] || die "no image at $image: build one with vm-image/build.sh"
image="$(cd -- "$(dirname -- "$image")" && pwd)/$(basename -- "$image")"
for tool in qemu-system-x86_64 qemu-img mkfs.vfat mcopy curl; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install qemu-system-x86 qemu-utils dosfstools mtools curl"
done
firmware=()
if $uefi; then
    for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF.fd /usr/share/qemu/OVMF.fd; do
        if [[ -f "$f" ]]; then
            firmware=(-bios "$f")
            break
        fi
    done
    ((${#firmware[@]} > 0)) || die "no UEFI firmware: apt-get install ovmf"
fi

work="$(mktemp -d)"
qemu_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [[ -n "$qemu_pid" ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

qemu-img create -q -f qcow2 -b "$image" -F qcow2 "$work/overlay.qcow2"
# NoCloud seed: a small FAT disk labelled CIDATA, as cloud-init's NoCloud source reads it.
printf 'instance-id: reelbox-boot-test\nlocal-hostname: %s\n' "$hostname_seed" >"$work/meta-data"
if $ssh_check; then
    ssh-keygen -q -t ed25519 -N '' -C reelbox-boot-test -f "$work/id" || die "ssh-keygen failed"
    printf '#cloud-config\nssh_authorized_keys:\n  - %s\n' "$(cat "$work/id.pub")" >"$work/user-data"
else
    printf '#cloud-config\n{}\n' >"$work/user-data"
fi
truncate -s 2M "$work/seed.img"
mkfs.vfat -n CIDATA "$work/seed.img" >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -i "$work/seed.img" "$work/meta-data" "$work/user-data" ::/

accel=(-accel tcg)
if [[ "$accel_choice" == kvm ]]; then
    accel=(-accel kvm)
    say "using KVM"
elif [[ "$accel_choice" == tcg ]]; then
    say "software emulation (--accel tcg)"
elif [[ -r /dev/kvm && -w /dev/kvm ]] \
    && timeout 5 qemu-system-x86_64 -accel kvm -machine none -display none -monitor none -nodefaults \
        -S -daemonize -pidfile "$work/kvm-probe.pid" >/dev/null 2>&1; then
    kill "$(cat "$work/kvm-probe.pid")" 2>/dev/null || true
    accel=(-accel kvm)
    say "using KVM"
else
    say "no usable KVM: software emulation (slow)"
fi

console="$work/console.log"
start=$(date +%s.%N)
qemu-system-x86_64 "${accel[@]}" -m "$memory" -smp 2 -machine q35 "${firmware[@]}" \
    -drive "if=virtio,file=$work/overlay.qcow2,format=qcow2" \
    -drive "if=virtio,file=$work/seed.img,format=raw,readonly=on" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:443,hostfwd=tcp:127.0.0.1:$ssh_port-:22" -device virtio-net-pci,netdev=n0 \
    -display none -serial "file:$console" -monitor none \
    >"$work/qemu.log" 2>&1 &
qemu_pid=$!
say "VM started (qemu pid $qemu_pid), waiting for $scheme://127.0.0.1:$port/healthz"

uptime_of() {
    curl --silent --fail --insecure --max-time 5 "$scheme://127.0.0.1:$port/healthz" 2>/dev/null \
        | sed -n 's/.*"uptime_secs":\([0-9]*\).*/\1/p'
}

# The unit's WatchdogSec=30s restarts a server that stops pinging; a restart resets the uptime.
watch_service() {
    ((watch > 0)) || return 0
    local last=-1 now end=$((SECONDS + watch))
    while ((SECONDS < end)); do
        now="$(uptime_of)"
        [[ -n "$now" ]] || die "the service stopped answering during --watch"
        ((now >= last)) || die "the service restarted during --watch (uptime $last -> $now s)"
        last="$now"
        sleep 5
    done
    say "still up after ${watch} s more, never restarted (uptime ${last} s)"
}

inspect_over_ssh() {
    $ssh_check || return 0
    say "inside the VM:"
    ssh -i "$work/id" -p "$ssh_port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o ConnectTimeout=20 root@127.0.0.1 \
        'hostname; systemctl show reelbox.service -p ActiveState -p SubState -p NRestarts -p WatchdogUSec;
         for u in reelbox-firstboot nftables reelbox-console; do echo "$u: $(systemctl is-active $u.service)"; done;
         journalctl -b -u reelbox-firstboot -u nftables -o cat --no-pager | grep -i -m 5 "error\|fail" || true;
         nft list table inet reelbox | grep -c accept | sed "s/^/firewall accept rules: /";
         systemd-analyze security reelbox.service --no-pager | tail -n 1' \
        || die "SSH into the VM failed (key from the seed not installed?)"
}

deadline=$((SECONDS + timeout))
while ((SECONDS < deadline)); do
    kill -0 "$qemu_pid" 2>/dev/null || { cat "$work/qemu.log" >&2; die "qemu exited"; }
    if body="$(curl --silent --fail --insecure --max-time 3 "$scheme://127.0.0.1:$port/healthz" 2>/dev/null)"; then
        elapsed="$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')"
        say "healthy after ${elapsed} s: $body"
        # Give the console unit a moment to print the link, then show it.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            grep -q 'setup?token=\|Sign in at' "$console" 2>/dev/null && break
            sleep 1
        done
        grep -a -A3 'reelbox is running on' "$console" | tr -d '\r' || say "(no setup link on the console yet)"
        if ! grep -aq "$hostname_seed" "$console"; then
            say "warning: the host name from the seed does not appear on the console"
        fi
        printf 'BOOT_TO_HEALTHY_SECONDS=%s\n' "$elapsed"
        watch_service
        inspect_over_ssh
        exit 0
    fi
    sleep 1
done
say "no healthy answer within ${timeout} s; the end of the console:"
tail -n 40 "$console" | tr -d '\r' >&2
exit 1
