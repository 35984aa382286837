# The A/B logic of berth's U-Boot boards, appended to a board's boot.cmd
# (boards/<board>/boot.cmd sets the berth_* variables it uses:
# boards/qemu-virt-armhf/boot.cmd explains each) before mkimage compiles
# the two into boot.scr.
#
# RAUC's boot counting, with RAUC's variables, so a RAUC board and berth
# (through libubootenv and the board's fw_env.config) read and write the
# same ones: BOOT_ORDER (the slots to try, in order, default "A B"),
# BOOT_A_LEFT and BOOT_B_LEFT (attempts left, 0-9, default 3). For each
# slot of BOOT_ORDER whose counter is above 0: decrement the counter, save,
# boot that slot's kernel and initramfs with `root=<its partition>
# rauc.slot=<name>`. Only userspace puts a counter back up (when the slot
# has proved itself), so a slot that fails before that (kernel panic, init
# fails, watchdog: each a reset) uses one attempt per boot and is skipped
# at 0. With every counter at 0, both go back to 3 and the machine resets
# (RAUC's example does the same; a halted gateway needs a visit, one that
# keeps trying may come up).
#
# The environment lives in two raw copies on the boot disk, U-Boot's
# redundant format: CRC32 (little-endian) of the data, a flag byte, then
# NUL-separated name=value pairs. Of the copies with a good CRC the one
# with the larger flag is newer (incremental: 255 wraps to 0); libubootenv
# (fw_setenv, berth) writes the older copy with the newer's flag + 1, and
# so does this script. The script reads and writes the copies itself with
# `<blk> read/write` rather than U-Boot's saveenv, which on these boards
# points at storage that is not redundant (pflash, a FAT file); it checks
# them with `env import -c` and builds them with `env export -c`, one byte
# apart to leave room for the flag. It keeps only the variables below.

setenv berth_env_vars "BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT BERTH_TRYING"
# Scratch: r1, r2 the copies as read; x1, x2 the same as `env import -c`
# wants them (CRC, data); w the copy to write; t 4 bytes.
setexpr berth_r1 ${berth_mem} + 0
setexpr berth_r2 ${berth_mem} + 0x10000
setexpr berth_x1 ${berth_mem} + 0x20000
setexpr berth_x2 ${berth_mem} + 0x30000
setexpr berth_w ${berth_mem} + 0x40000
setexpr berth_t ${berth_mem} + 0x50000
setexpr berth_f1 ${berth_r1} + 4
setexpr berth_f2 ${berth_r2} + 4
setexpr berth_d1 ${berth_r1} + 5
setexpr berth_d2 ${berth_r2} + 5
setexpr berth_xd1 ${berth_x1} + 4
setexpr berth_xd2 ${berth_x2} + 4
setexpr berth_w1 ${berth_w} + 1
setexpr berth_wf ${berth_w} + 4
setexpr berth_env_blocks ${berth_env_size} / 0x200
setexpr berth_env_data ${berth_env_size} - 5
setexpr berth_env_crcdata ${berth_env_size} - 1

echo "berth-ab: reading the boot counters"
${berth_blk} dev ${berth_blkdev}
${berth_blk} read ${berth_r1} ${berth_env_blk1} ${berth_env_blocks}
${berth_blk} read ${berth_r2} ${berth_env_blk2} ${berth_env_blocks}
cp.b ${berth_r1} ${berth_x1} 4
cp.b ${berth_d1} ${berth_xd1} ${berth_env_data}
cp.b ${berth_r2} ${berth_x2} 4
cp.b ${berth_d2} ${berth_xd2} ${berth_env_data}

# berth_env_cur: the newer good copy (1 or 2), 0 when neither is good.
setenv berth_env_cur 0
if env import -c ${berth_x1} ${berth_env_crcdata} ${berth_env_vars}; then
    setenv berth_env_cur 1
fi
if env import -c ${berth_x2} ${berth_env_crcdata} ${berth_env_vars}; then
    if test ${berth_env_cur} = 0; then
        setenv berth_env_cur 2
    elif itest.b *${berth_f1} == ff && itest.b *${berth_f2} == 0; then
        setenv berth_env_cur 2
    elif itest.b *${berth_f2} == ff && itest.b *${berth_f1} == 0; then
        setenv berth_env_cur 1
    elif itest.b *${berth_f2} > *${berth_f1}; then
        setenv berth_env_cur 2
    else
        setenv berth_env_cur 1
    fi
fi
if test ${berth_env_cur} = 1; then
    env import -c ${berth_x1} ${berth_env_crcdata} ${berth_env_vars}
fi

# The next write goes to the other copy, flagged one newer.
if test ${berth_env_cur} = 1; then
    setexpr.b berth_env_flag *${berth_f1} + 1
    setenv berth_env_blk ${berth_env_blk2}
elif test ${berth_env_cur} = 2; then
    setexpr.b berth_env_flag *${berth_f2} + 1
    setenv berth_env_blk ${berth_env_blk1}
else
    echo "berth-ab: no good environment copy on the disk: using the defaults"
    setenv berth_env_flag 1
    setenv berth_env_blk ${berth_env_blk1}
fi
# Saving: export with the CRC one byte further on, move the CRC down over
# that byte, put the flag after it, write the copy.
setenv berth_saveenv 'mw.b ${berth_w} 0 ${berth_env_size}; env export -c -s ${berth_env_crcdata} ${berth_w1} ${berth_env_vars} && cp.b ${berth_w1} ${berth_t} 4 && cp.b ${berth_t} ${berth_w} 4 && mw.b ${berth_wf} ${berth_env_flag} && ${berth_blk} write ${berth_w} ${berth_env_blk} ${berth_env_blocks}'

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
echo "berth-ab: BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT} (copy ${berth_env_cur})"

setenv berth_slot
for s in ${BOOT_ORDER}; do
    if test -z "${berth_slot}" && test "${s}" = A && test ${BOOT_A_LEFT} -gt 0; then
        setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
        setenv berth_slot A
        setenv berth_part ${berth_part_A}
        setenv berth_root ${berth_root_A}
    fi
    if test -z "${berth_slot}" && test "${s}" = B && test ${BOOT_B_LEFT} -gt 0; then
        setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
        setenv berth_slot B
        setenv berth_part ${berth_part_B}
        setenv berth_root ${berth_root_B}
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
setenv bootargs "${berth_bootargs} root=${berth_root} rauc.slot=${berth_slot}"
if load ${berth_blk} ${berth_blkdev}:${berth_part} ${kernel_addr_r} ${berth_kernel}; then
    if load ${berth_blk} ${berth_blkdev}:${berth_part} ${ramdisk_addr_r} ${berth_initrd}; then
        run berth_bootcmd
    fi
fi
echo "berth-ab: slot ${berth_slot} did not start a kernel; resetting"
reset
