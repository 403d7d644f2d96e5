#!/usr/bin/env bash
# Build the reelbox VM image: a bootable Debian 12 (UEFI and BIOS) qcow2 with reelbox installed by
# installer/install.sh --root, from Debian packages only (debootstrap, e2fsprogs, mtools,
# systemd-boot, syslinux, qemu-img). Run as root on Debian 12; see --help.
set -euo pipefail

readonly PROG="build.sh"
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly here
repo="$(cd -- "$here/.." && pwd)"
readonly repo

output="$repo/reelbox-debian12.qcow2"
binary=""
size_mib=8192
mirror="http://deb.debian.org/debian"
workdir_parent="/var/tmp"
keep=false

usage() {
    cat <<'EOF'
Usage: vm-image/build.sh [options]

Builds a bootable Debian 12 qcow2 (UEFI with systemd-boot, or BIOS with SYSLINUX) with reelbox installed and enabled.
On first boot the VM takes its host name from the kernel command line (reelbox.hostname=NAME),
a cloud-init NoCloud seed (a disk labelled CIDATA with meta-data `local-hostname`) or the cloud
metadata service, generates its SSH host keys (reelbox makes its own secrets in its data
directory), and shows the setup link on the console.

Options:
  --output FILE     where to write the image (default: ./reelbox-debian12.qcow2)
  --binary PATH     the reelbox binary to install (default: cargo build --release here)
  --size MIB        size of the virtual disk in MiB (default 8192; the qcow2 grows as used)
  --mirror URL      Debian mirror (default http://deb.debian.org/debian)
  --workdir DIR     where to build (default /var/tmp; needs about 2 GB, removed afterwards)
  --keep-workdir    do not delete the build directory (debugging)
  -h, --help        show this help

Needs (Debian 12): debootstrap e2fsprogs dosfstools mtools fdisk systemd-boot-efi syslinux
                   syslinux-common qemu-utils
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --output) output="${2:?--output needs a file}"; shift 2 ;;
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        --size) size_mib="${2:?--size needs MiB}"; shift 2 ;;
        --mirror) mirror="${2:?--mirror needs a URL}"; shift 2 ;;
        --workdir) workdir_parent="${2:?--workdir needs a directory}"; shift 2 ;;
        --keep-workdir) keep=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

[[ "$(id -u)" == 0 ]] || die "run me as root (debootstrap and file ownership need it)"
if ! [[ "$size_mib" =~ ^[0-9]+$ ]] || ((size_mib < 2048)); then
    die "--size must be at least 2048 MiB"
fi
for tool in debootstrap mkfs.ext4 mkfs.vfat mcopy mmd sfdisk qemu-img chroot syslinux; do
    command -v "$tool" >/dev/null \
        || die "$tool is missing: apt-get install debootstrap e2fsprogs dosfstools mtools fdisk qemu-utils syslinux syslinux-common"
done
[[ -f /usr/lib/syslinux/mbr/gptmbr.bin ]] || die "gptmbr.bin is missing: apt-get install syslinux-common"
readonly SDBOOT=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[[ -f "$SDBOOT" ]] || die "$SDBOOT is missing: apt-get install systemd-boot-efi"

if [[ -z "$binary" ]]; then
    command -v cargo >/dev/null || die "no --binary given and cargo is not installed"
    say "building reelbox (cargo build --release --locked)"
    target="${CARGO_TARGET_DIR:-$repo/target}"
    (cd "$repo" && CARGO_TARGET_DIR="$target" cargo build --release --locked --bin reelbox)
    binary="$target/release/reelbox"
fi
[[ -x "$binary" ]] || die "$binary is not an executable"

work="$(mktemp -d "$workdir_parent/reelbox-image.XXXXXX")"
rootfs="$work/rootfs"
mounted=()
cleanup() {
    local m
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        m="${mounted[i]}"
        umount -l "$m" 2>/dev/null || true
    done
    if $keep; then
        say "build directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

in_root() {
    chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        LC_ALL=C.UTF-8 "$@"
}

started=$SECONDS
say "debootstrap Debian 12 into $rootfs"
mkdir -p "$rootfs"
debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

# Keep the image small: no documentation, manual pages or translations.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-reelbox-slim" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
# No daemons start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
for fs in proc sys dev; do
    mount --rbind "/$fs" "$rootfs/$fs"
    mount --make-rslave "$rootfs/$fs"
    mounted+=("$rootfs/$fs")
done

say "installing the kernel, systemd, ffmpeg and the runtime packages"
# The installer's own package list (ffmpeg ca-certificates curl nftables) plus a bootable system.
in_root apt-get update -q >"$work/apt.log" 2>&1
in_root apt-get install -y -q --no-install-recommends \
    linux-image-cloud-amd64 initramfs-tools systemd systemd-sysv systemd-resolved udev dbus \
    iproute2 netbase openssh-server ffmpeg ca-certificates curl nftables util-linux \
    >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "package installation failed (log above)"; }
in_root apt-get clean

say "installing reelbox with installer/install.sh --root"
# Placeholder name until first boot decides the real one.
bash "$repo/installer/install.sh" --root "$rootfs" --binary "$binary" --hostname reelbox.local \
    --tls self-signed --non-interactive
# The installer and first-boot logic travel with the image, so first boot and later upgrades
# run the same code.
install -d -m 0755 "$rootfs/opt/reelbox/installer"
install -m 0755 "$repo/installer/install.sh" "$rootfs/opt/reelbox/installer/install.sh"
install -m 0644 "$repo/installer/reelbox.service" "$repo/installer/reelbox.nft" \
    "$repo/installer/reelbox.sysusers" "$rootfs/opt/reelbox/installer/"
install -m 0755 "$here/firstboot.sh" "$rootfs/opt/reelbox/installer/firstboot.sh"

cat >"$rootfs/etc/systemd/system/reelbox-firstboot.service" <<'EOF'
[Unit]
Description=reelbox first boot: host name, secrets, configuration
ConditionPathExists=!/var/lib/reelbox/.firstboot-done
Wants=network-online.target
After=network-online.target
Before=reelbox.service ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/opt/reelbox/installer/firstboot.sh configure
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
cat >"$rootfs/etc/systemd/system/reelbox-console.service" <<'EOF'
[Unit]
Description=Show the reelbox setup link on the console
After=reelbox.service
Requires=reelbox.service

[Service]
Type=oneshot
ExecStart=/opt/reelbox/installer/firstboot.sh console
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF

# Networking: DHCP on every Ethernet interface, resolved for DNS.
cat >"$rootfs/etc/systemd/network/80-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
in_root systemctl enable systemd-networkd.service systemd-resolved.service reelbox-firstboot.service \
    reelbox-console.service serial-getty@ttyS0.service >/dev/null 2>&1
# Not every virtual NIC comes up; don't hold the boot for one that never does.
install -d "$rootfs/etc/systemd/system/systemd-networkd-wait-online.service.d"
printf '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=20\n' \
    >"$rootfs/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf"

# Each VM gets its own identity: machine id and SSH host keys are made on first boot.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs"/etc/ssh/ssh_host_*
rm -f "$rootfs/usr/sbin/policy-rc.d"
echo reelbox >"$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
# Root has no password: first boot installs SSH keys from a cloud-init seed's user-data, or set
# one from the hypervisor's console in single-user mode; the image ships no shared secret.
in_root passwd -l root >/dev/null

for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -l "${mounted[i]}"
done
mounted=()

# Partition layout: a 64 MiB EFI system partition with systemd-boot and the kernel, then root.
root_uuid="$(cat /proc/sys/kernel/random/uuid)"
part_uuid="$(cat /proc/sys/kernel/random/uuid)"
esp_mib=64
root_mib=$((size_mib - esp_mib - 2))
kernel="$(find "$rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n 1)"
initrd="$(find "$rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n 1)"
[[ -f "$kernel" && -f "$initrd" ]] || die "no kernel or initrd in $rootfs/boot"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" >"$rootfs/etc/fstab"

say "making the EFI system partition"
esp="$work/esp.img"
truncate -s "${esp_mib}M" "$esp"
# Hidden sectors = the partition's start (1 MiB), so the BIOS boot sector finds its loader.
mkfs.vfat -F 32 -h 2048 -n REELBOX-ESP "$esp" >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$esp" "$SDBOOT" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$kernel" ::/vmlinuz
mcopy -i "$esp" "$initrd" ::/initrd.img
printf 'default reelbox.conf\ntimeout 0\nconsole-mode keep\n' >"$work/loader.conf"
printf 'title reelbox (Debian 12)\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTUUID=%s rw console=tty0 console=ttyS0,115200 quiet\n' \
    "$part_uuid" >"$work/reelbox.conf"
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/reelbox.conf" ::/loader/entries/reelbox.conf
# BIOS boot as well (many hypervisors default to it): SYSLINUX on the same partition, started by
# the GPT-aware MBR, loading the same kernel and initrd.
printf 'DEFAULT reelbox\nPROMPT 0\nTIMEOUT 0\nLABEL reelbox\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND root=PARTUUID=%s rw console=tty0 console=ttyS0,115200 quiet\n' \
    "$part_uuid" >"$work/syslinux.cfg"
mcopy -i "$esp" "$work/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$esp"

say "making the root file system (${root_mib} MiB, sparse)"
rootimg="$work/root.img"
truncate -s "${root_mib}M" "$rootimg"
mkfs.ext4 -q -L reelbox-root -U "$root_uuid" -d "$rootfs" "$rootimg"
rm -rf "$rootfs"

say "assembling the disk"
disk="$work/disk.raw"
truncate -s "${size_mib}M" "$disk"
sfdisk --quiet "$disk" <<EOF
label: gpt
start=1MiB, size=${esp_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp, attrs="LegacyBIOSBootable"
start=$((esp_mib + 1))MiB, size=${root_mib}MiB, type=4F68BCE3-E8CD-4C0C-B9C6-44DA2D1B1A55, uuid=$part_uuid, name=root
EOF
dd if=/usr/lib/syslinux/mbr/gptmbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$esp" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$rootimg" of="$disk" bs=1M seek=$((esp_mib + 1)) conv=notrunc,sparse status=none
rm -f "$esp" "$rootimg"
mkdir -p "$(dirname -- "$output")"
qemu-img convert -c -O qcow2 "$disk" "$output.new"
mv -f "$output.new" "$output"
say "image: $output ($(du -h "$output" | cut -f1) on disk, ${size_mib} MiB virtual) in $((SECONDS - started)) s"
say "boot it: vm-image/boot-test.sh $output"
