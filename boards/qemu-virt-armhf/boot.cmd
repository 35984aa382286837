# U-Boot boot script of the qemu-virt-armhf board: A/B slots with RAUC's
# boot counting. This part names the board's places; the logic, the same
# on every U-Boot board of berth's, is boards/common/uboot-ab.cmd, which
# the build appends before compiling the two to boot.scr:
#
#   cat boot.cmd ../common/uboot-ab.cmd >full.cmd
#   mkimage -A arm -O linux -T script -C none -d full.cmd boot.scr
#
# (qemu-tests/ab_image.py does this when it builds the disk). The distro
# boot of Debian's u-boot-qemu (qemu_arm) finds boot.scr on partition 1
# and runs it. The disk (README.md):
#
#   offset 0x100000, 0x4000 bytes  environment, copy 1 (fw_env.config)
#   offset 0x120000, 0x4000 bytes  environment, copy 2
#   partition 1  boot      boot.scr
#   partition 2  rootfs A  /boot/vmlinuz, /boot/initrd.img, /sbin/init
#   partition 3  rootfs B  the same
#   partition 4  data      berth's state root

# The block device: U-Boot's command for it and its number (distro boot's).
setenv berth_blk virtio
setenv berth_blkdev ${devnum}
# The environment's two copies, in 512-byte blocks, and their size.
setenv berth_env_blk1 0x800
setenv berth_env_blk2 0x900
setenv berth_env_size 0x4000
# 0x60000 bytes of scratch memory for the environment: above the kernel
# (kernel_addr_r 0x40400000) and the initrd (ramdisk_addr_r 0x44000000),
# far below U-Boot (relocated to the top of the 256 MiB).
setenv berth_mem 0x46000000
# Each slot's partition number and its name for the kernel.
setenv berth_part_A 2
setenv berth_part_B 3
setenv berth_root_A /dev/vda2
setenv berth_root_B /dev/vda3
# In each slot's root filesystem: the kernel (zImage) and initramfs.
setenv berth_kernel /boot/vmlinuz
setenv berth_initrd /boot/initrd.img
# cryptomgr.notests: no crypto self-tests at boot (1.7 s of the kernel's
# 3.9 s to /init under emulation; a board on real hardware keeps them).
setenv berth_bootargs "console=ttyAMA0 ro rootwait panic=-1 quiet cryptomgr.notests"
# Started once both are loaded (filesize: the initrd's); the device tree is
# the one QEMU gave U-Boot.
setenv berth_bootcmd 'bootz ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}'
