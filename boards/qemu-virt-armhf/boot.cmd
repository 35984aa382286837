# U-Boot boot script of the qemu-virt-armhf board: A/B slots with RAUC's
# boot counting (BOOT_ORDER, BOOT_A_LEFT, BOOT_B_LEFT), so a RAUC board
# and berth read and write the same variables.
#
# Compiled to boot.scr (mkimage -A arm -T script -C none -d boot.cmd
# boot.scr, see qemu-tests/ab_image.py) and put on the boot partition,
# where the distro boot of Debian's u-boot-qemu (qemu_arm) finds and runs
# it. The layout (README.md):
#
#   disk offset 0x100000, 0x4000 bytes  environment, copy 1 (blocks 0x800..)
#   disk offset 0x120000, 0x4000 bytes  environment, copy 2 (blocks 0x900..)
#   partition 1  boot      this script
#   partition 2  rootfs A  /boot/vmlinuz, /boot/initrd.img, /sbin/init
#   partition 3  rootfs B  the same
#   partition 4  data      berth's state root
#
# The environment is U-Boot's redundant format (fw_env.config, two
# lines): CRC32 (little-endian) of the data, a flag byte, then
# NUL-separated name=value pairs. The copy with a good CRC wins; with both
# good, the larger flag (incremental, 255 wraps to 0) is the newer one.
# libubootenv (fw_setenv, berth's U-Boot backend) writes the older copy
# with the newer's flag + 1, and so does this script. This build of U-Boot
# keeps its own environment in the second pflash bank (saveenv there is not
# redundant and the armmp kernel cannot see it), so the script reads and
# writes the copies on the disk itself with `virtio read/write`, checking
# them with `env import -c`; U-Boot's own environment is left alone.
#
# The scheme is RAUC's example: for each slot of BOOT_ORDER whose counter
# is above 0, decrement the counter, save, boot it with
# `root=<its partition> rauc.slot=<name>`. A slot that fails before
# userspace marks it good (kernel panic, init fails, watchdog) has used one
# attempt; when every counter is 0 both are reset to 3 and the machine
# resets (a box in the field keeps trying rather than halting: a halted
# gateway needs a visit, a retried one may come up).
#
# Memory: 0x46000000.. scratch for the environment (below U-Boot, above
# the kernel at kernel_addr_r and the initrd at ramdisk_addr_r).

# The variables this script reads and writes back: RAUC's, and the slot
# berth has on trial (BERTH_TRYING, which the script only carries over).
# The environment on the disk holds nothing else (the script's writes
# keep only these).
setenv berth_env_vars "BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT BERTH_TRYING"

echo "berth-ab: reading the boot counters"
virtio dev ${devnum}
# Both copies, raw.
virtio read 0x46000000 0x800 0x20
virtio read 0x46010000 0x900 0x20
# Each rearranged as `env import -c` wants it: CRC, then the data.
cp.b 0x46000000 0x46020000 4
cp.b 0x46000005 0x46020004 0x3ffb
cp.b 0x46010000 0x46030000 4
cp.b 0x46010005 0x46030004 0x3ffb

# berth_env_cur: the newer good copy (1 or 2), 0 when neither is good.
setenv berth_env_cur 0
if env import -c 0x46020000 0x3fff ${berth_env_vars}; then
    setenv berth_env_cur 1
fi
if env import -c 0x46030000 0x3fff ${berth_env_vars}; then
    if test ${berth_env_cur} = 0; then
        setenv berth_env_cur 2
    elif itest.b *0x46000004 == ff && itest.b *0x46010004 == 0; then
        setenv berth_env_cur 2
    elif itest.b *0x46010004 == ff && itest.b *0x46000004 == 0; then
        setenv berth_env_cur 1
    elif itest.b *0x46010004 > *0x46000004; then
        setenv berth_env_cur 2
    else
        setenv berth_env_cur 1
    fi
fi
if test ${berth_env_cur} = 1; then
    env import -c 0x46020000 0x3fff ${berth_env_vars}
fi

# The next write goes to the other copy, flagged one newer.
if test ${berth_env_cur} = 1; then
    setexpr.b berth_env_flag *0x46000004 + 1
    setenv berth_env_blk 0x900
elif test ${berth_env_cur} = 2; then
    setexpr.b berth_env_flag *0x46010004 + 1
    setenv berth_env_blk 0x800
else
    echo "berth-ab: no good environment copy on the disk: using the defaults"
    setenv berth_env_flag 1
    setenv berth_env_blk 0x800
fi
# Saving: export the variables with a CRC one byte further on, move
# the CRC down over that byte, put the flag after it, write the copy.
setenv berth_saveenv 'mw.b 0x46040000 0 0x4000; env export -c -s 0x3fff 0x46040001 ${berth_env_vars} && cp.b 0x46040001 0x46050000 4 && cp.b 0x46050000 0x46040000 4 && mw.b 0x46040004 ${berth_env_flag} && virtio write 0x46040000 ${berth_env_blk} 0x20'

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
echo "berth-ab: BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT} (copy ${berth_env_cur})"

setenv berth_slot
for s in ${BOOT_ORDER}; do
    if test -z "${berth_slot}" && test "${s}" = A && test ${BOOT_A_LEFT} -gt 0; then
        setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
        setenv berth_slot A
        setenv berth_part 2
    fi
    if test -z "${berth_slot}" && test "${s}" = B && test ${BOOT_B_LEFT} -gt 0; then
        setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
        setenv berth_slot B
        setenv berth_part 3
    fi
done

if test -z "${berth_slot}"; then
    echo "berth-ab: no slot has attempts left: BOOT_A_LEFT and BOOT_B_LEFT back to 3, resetting"
    setenv BOOT_A_LEFT 3
    setenv BOOT_B_LEFT 3
    run berth_saveenv
    reset
fi

# The attempt counts before the boot: a slot that never comes up has used it.
if run berth_saveenv; then
    echo "berth-ab: booting slot ${berth_slot} (BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT} saved)"
else
    echo "berth-ab: could not save the counters; booting slot ${berth_slot} anyway"
fi
setenv bootargs "console=ttyAMA0 root=/dev/vda${berth_part} ro rootwait panic=-1 quiet rauc.slot=${berth_slot}"
if load ${devtype} ${devnum}:${berth_part} ${kernel_addr_r} /boot/vmlinuz; then
    if load ${devtype} ${devnum}:${berth_part} ${ramdisk_addr_r} /boot/initrd.img; then
        bootz ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
    fi
fi
echo "berth-ab: slot ${berth_slot} did not start a kernel; resetting"
reset
