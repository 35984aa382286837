# U-Boot boot script of the rpi4 board (Raspberry Pi 4 Model B, 64-bit,
# Debian 12's u-boot-rpi rpi_4 build): this part names the board's places;
# the A/B logic is boards/common/uboot-ab.cmd, appended before compiling:
#
#   cat boot.cmd ../common/uboot-ab.cmd >full.cmd
#   mkimage -A arm64 -O linux -T script -C none -d full.cmd boot.scr
#
# The SD card (README.md): MBR, disk identifier 0xb3e7a001,
#
#   offset 0x100000, 0x4000 bytes  environment, copy 1 (fw_env.config)
#   offset 0x120000, 0x4000 bytes  environment, copy 2
#   partition 1  FAT32   firmware, config.txt, u-boot.bin, boot.scr
#   partition 2  ext4    rootfs A: /boot/vmlinuz, /boot/initrd.img, /boot/bcm2711-rpi-4-b.dtb
#   partition 3  ext4    rootfs B: the same
#   partition 4  ext4    data: berth's state root

# The SD card as U-Boot's distro boot found it (the device boot.scr came from).
setenv berth_blk mmc
setenv berth_blkdev ${devnum}
# The environment's two copies, in 512-byte blocks, and their size.
setenv berth_env_blk1 0x800
setenv berth_env_blk2 0x900
setenv berth_env_size 0x4000
# Memory (the Pi 4's first GiB; U-Boot relocates itself near its top):
#   0x00200000  the kernel (Image, booti), up to 0x07e00000
#   0x07e00000  the slot's device tree
#   0x08000000  the initramfs
#   0x0a000000  where booti decompresses a gzip'd Image from (64 MiB)
#   0x0f000000  the environment scratch (0x60000 bytes)
setenv kernel_addr_r 0x00200000
setenv fdt_addr_r 0x07e00000
setenv ramdisk_addr_r 0x08000000
setenv kernel_comp_addr_r 0x0a000000
setenv kernel_comp_size 0x04000000
setenv berth_mem 0x0f000000
# Each slot's partition number and its name for the kernel: by PARTUUID
# (the disk identifier and the partition number), so the kernel's own
# numbering of the SD card (mmcblk0 or mmcblk1) does not matter.
setenv berth_part_A 2
setenv berth_part_B 3
setenv berth_root_A PARTUUID=b3e7a001-02
setenv berth_root_B PARTUUID=b3e7a001-03
# In each slot's root filesystem (links Debian's kernel-img.conf makes).
setenv berth_kernel /boot/vmlinuz
setenv berth_initrd /boot/initrd.img
# ttyS1: the mini UART on GPIO 14/15 under the mainline device tree.
# panic=10: a kernel panic resets the board after 10 s (one attempt used).
setenv berth_bootargs "console=ttyS1,115200 console=tty1 ro rootwait panic=10 quiet"
# The slot's own device tree (the one its kernel came with), then the
# kernel; the initramfs size is kept before the device tree's load
# overwrites filesize.
setenv berth_bootcmd 'setenv berth_initrd_size ${filesize}; load ${berth_blk} ${berth_blkdev}:${berth_part} ${fdt_addr_r} /boot/bcm2711-rpi-4-b.dtb && booti ${kernel_addr_r} ${ramdisk_addr_r}:${berth_initrd_size} ${fdt_addr_r}'
