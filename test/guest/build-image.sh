#!/usr/bin/env bash
# Builds the test guest image: a BIOS-bootable raw disk (MBR boot code -> one active FAT16
# partition -> SYSLINUX -> Debian's cloud kernel -> a busybox initramfs), from Debian packages
# only, with no mount and no loop device. The guest's /init prints its disks on the console
# (ttyS0) whenever they change:
#     BLOCKDEV vdb size=1073741824 serial=<first 20 chars of the volume id> label=-
#     BLOCKDEVS t=<uptime> vda vdb
# and runs a root shell on the second serial port (ttyS1), which tests reach through the unix
# socket libvirt binds it to. A press of ACPI's power button powers it off, after printing
#     POWER BUTTON: powering off
# unless /ignore-power-button exists (a guest that ignores ACPI; it prints "POWER BUTTON: ignored")
#
# The image is cached: $BASALT_TEST_IMAGE_DIR/basalt-test-<hash of this script>.raw is built once
# and kept until this script changes. The last line of stdout is its path.
set -euo pipefail
DIR=${BASALT_TEST_IMAGE_DIR:-/var/cache/basalt/test-image}
HASH=$(sha1sum "$0" | cut -c1-12)
IMG=$DIR/basalt-test-$HASH.raw
SIZE_MIB=64
PART_START=2048                 # sectors: the partition starts at 1 MiB
OFFSET=$((PART_START * 512))    # bytes, for mtools and syslinux
export SOURCE_DATE_EPOCH=1700000000 MTOOLS_SKIP_CHECK=1

mkdir -p "$DIR"
[ -f "$IMG" ] && { echo "$IMG"; exit 0; }
# two builds at once (parallel test files) make the image once
exec 9>"$DIR/.lock"
flock 9
[ -f "$IMG" ] && { echo "$IMG"; exit 0; }

WORK=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log() { echo "[build-image] $*" >&2; }

for tool in sfdisk mkfs.vfat mcopy syslinux cpio; do
  command -v "$tool" >/dev/null || { log "$tool is missing: run ./stack.sh deps"; exit 1; }
done
MBR=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$MBR" ] || { log "$MBR is missing (syslinux-common): run ./stack.sh deps"; exit 1; }
# the initramfs has no libc, so busybox must be the static build
if ldd /bin/busybox >/dev/null 2>&1; then log "/bin/busybox is not static: install busybox-static"; exit 1; fi

# the kernel: the cloud flavour (LZ4, quick to decompress under TCG), extracted from its .deb
KPKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$KPKG" ] || { log "cannot resolve linux-image-cloud-amd64 (run apt-get update)"; exit 1; }
KVER=${KPKG#linux-image-}
DEB=$(ls "$DIR"/"${KPKG}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$DEB" ]; then
  DEB=$(ls /var/cache/apt/archives/"${KPKG}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$DEB" ]; then (cd "$WORK" && apt-get download -q "$KPKG" >&2); DEB=$(ls "$WORK"/"${KPKG}"_*.deb); fi
  cp "$DEB" "$DIR/"; DEB=$DIR/$(basename "$DEB")
fi
dpkg-deb -x "$DEB" "$WORK/kroot"
DRIVERS=$WORK/kroot/lib/modules/$KVER/kernel/drivers

# the initramfs
R=$WORK/initrd
mkdir -p "$R"/{bin,dev,proc,sys,mods}
cp /bin/busybox "$R/bin/"
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk button"
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev virtio/virtio_pci_modern_dev virtio/virtio_pci block/virtio_blk acpi/button; do
  cp "$DRIVERS/$m.ko" "$R/mods/"
done
cat >"$R/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $MODULES; do insmod /mods/\$m.ko; done
echo "BOOTED cmdline=\$(cat /proc/cmdline)"
if [ -e /dev/ttyS1 ]; then
  stty -echo </dev/ttyS1
  setsid sh -c 'while :; do PS1= sh </dev/ttyS1 >/dev/ttyS1 2>&1; done' &
fi
describe() {
  # a disk unplugged since the listing has no size to read: skip it (an empty size in the
  # arithmetic below would end this shell, PID 1, and panic the kernel)
  size=\$(cat /sys/block/\$1/size 2>/dev/null)
  [ -n "\$size" ] || return 0
  serial=\$(cat /sys/block/\$1/serial 2>/dev/null)
  # an ext2/3/4 superblock (magic 0xEF53 at byte 1080) holds its label at byte 1144
  label=
  if [ "\$(dd if=/dev/\$1 bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' ')" = 53ef ]; then
    label=\$(dd if=/dev/\$1 bs=1 skip=1144 count=16 2>/dev/null | tr -cd 'A-Za-z0-9_.-')
  fi
  echo "BLOCKDEV \$1 size=\$((size * 512)) serial=\${serial:--} label=\${label:--}"
}
# ACPI's power button (virsh shutdown --mode acpi, a soft reboot) powers the guest off: with the
# button driver loaded the kernel counts the presses, and there is no acpid to do more
read -r pressed _ </sys/firmware/acpi/interrupts/ff_pwr_btn 2>/dev/null || pressed=
prev=""
while :; do
  read -r now _ </sys/firmware/acpi/interrupts/ff_pwr_btn 2>/dev/null || now=
  if [ "\$now" != "\$pressed" ]; then
    if [ -e /ignore-power-button ]; then
      echo "POWER BUTTON: ignored"
      pressed=\$now
    else
      echo "POWER BUTTON: powering off"
      sync
      poweroff -f
    fi
  fi
  cur=""
  for d in /sys/block/vd*; do [ -e "\$d" ] && cur="\$cur \${d##*/}"; done
  if [ "\$cur" != "\$prev" ]; then
    for n in \$cur; do case " \$prev " in *" \$n "*) ;; *) describe \$n ;; esac; done
    echo "BLOCKDEVS t=\$(cut -d' ' -f1 /proc/uptime)\$cur"
    prev=\$cur
  fi
  sleep 0.2
done
INIT
chmod +x "$R/init"
find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet --reproducible | gzip -n -1) >"$WORK/initrd.gz"
cp "$WORK/kroot/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
cat >"$WORK/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=ttyS0 quiet
CFG

# the disk: partition table, MBR boot code (first 440 bytes only), FAT16, files, SYSLINUX
T=$WORK/image.raw
truncate -s "${SIZE_MIB}M" "$T"
printf 'label: dos\nlabel-id: 0x5eed0001\nstart=%d, type=6, bootable\n' "$PART_START" |
  sfdisk -q --no-reread --no-tell-kernel "$T" >&2
dd if="$MBR" of="$T" bs=440 count=1 conv=notrunc status=none
# mkfs.vfat counts --offset in sectors and the size in KiB; mtools and syslinux count bytes
mkfs.vfat -F 16 -n BASALTTEST --invariant --offset "$PART_START" -h "$PART_START" "$T" $((SIZE_MIB * 1024 - PART_START / 2)) >/dev/null
mcopy -i "$T@@$OFFSET" "$WORK/vmlinuz" "$WORK/initrd.gz" "$WORK/syslinux.cfg" ::
syslinux --offset "$OFFSET" --install "$T"
mv "$T" "$IMG"
log "built $IMG ($KPKG)"
echo "$IMG"
