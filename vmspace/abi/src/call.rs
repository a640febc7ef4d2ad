//! Typed hypercalls: every call with its arguments named, and the one
//! mapping between those names and the slots of a [`HypercallBlock`].
//!
//! The guest builds a block with [`Call::encode`] and the host reads it
//! back with [`Call::decode`]; both come from the one table below, so an
//! argument cannot be put in one slot by the guest and looked for in
//! another by the host, and a handler names what it uses
//! (`Call::VmspaceMmap { id, addr, len, .. }`) instead of indexing
//! `args[3]`. (Solo5 keeps one `hvt_core_hypercalls[]` table for the same
//! reason.) Arguments are raw `u64`s as the guest passed them: checking
//! them is the handler's job, because what is valid is the call's
//! business, not the transport's.

use crate::{Hypercall, HypercallBlock};

/// A hypercall number the host does not know (the guest gets ENOSYS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownHypercall(pub u16);

macro_rules! calls {
    ($(
        $(#[$doc:meta])*
        $name:ident { $( $(#[$fdoc:meta])* $field:ident ),* $(,)? }
    ),* $(,)?) => {
        /// A hypercall and its arguments, in the order of its prototype
        /// (the block's `args[0]`, `args[1]`, ...). Unused slots are 0
        /// when encoded and ignored when decoded.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Call {
            $(
                $(#[$doc])*
                $name { $( $(#[$fdoc])* $field: u64 ),* },
            )*
        }

        // Seven argument slots: a call with more would not fit the block.
        $( const _: () = assert!(<[&str]>::len(&[$(stringify!($field)),*]) <= 7); )*

        impl Call {
            /// Which hypercall this is (its port is `hypercall().port()`).
            #[inline]
            pub const fn hypercall(&self) -> Hypercall {
                match self {
                    $( Call::$name { .. } => Hypercall::$name, )*
                }
            }

            /// The argument block the guest sends for this call (inlined:
            /// in a wrapper it folds to the stores of the arguments).
            #[inline]
            pub fn encode(&self) -> HypercallBlock {
                let mut args = [0u64; 7];
                match *self {
                    $(
                        Call::$name { $($field),* } => {
                            let values: &[u64] = &[$($field),*];
                            args[..values.len()].copy_from_slice(values);
                        }
                    )*
                }
                HypercallBlock { args, ret: 0, errno: 0 }
            }

            /// The call that hypercall number `nr` with `block` makes, as
            /// the host reads it.
            pub fn decode(nr: u16, block: &HypercallBlock) -> Result<Call, UnknownHypercall> {
                let hc = Hypercall::from_nr(nr).ok_or(UnknownHypercall(nr))?;
                // The const assertion above keeps every field inside the
                // seven slots, so the fallback is never taken.
                let mut slots = block.args.iter().copied();
                let mut next = move || slots.next().unwrap_or(0);
                Ok(match hc {
                    $(
                        Hypercall::$name => {
                            $( let $field = next(); )*
                            Call::$name { $($field),* }
                        }
                    )*
                })
            }
        }
    };
}

calls! {
    /// `noop()`: returns 0 (the benchmarks' floor).
    Noop {},
    /// `console_write(buf, len, stream)`.
    ConsoleWrite {
        /// Guest-physical address of the bytes.
        buf,
        /// How many.
        len,
        /// 2 for the host's stderr, anything else for its stdout.
        stream,
    },
    /// `exit(status)`.
    Exit {
        /// The exit status (the host exits with `status & 0xff`).
        status,
    },
    /// `clock(which)`.
    Clock {
        /// [`crate::CLOCK_MONOTONIC`] or [`crate::CLOCK_REALTIME`].
        which,
    },
    /// `pool_stats()`.
    PoolStats {},
    /// `console_read(buf, len)`.
    ConsoleRead {
        /// Guest-physical address of the buffer.
        buf,
        /// Its size in bytes.
        len,
    },
    /// `idle(deadline_ns)`.
    Idle {
        /// Monotonic deadline in ns (0: none).
        deadline_ns,
    },
    /// `vmspace_create(id, type, data)`.
    VmspaceCreate {
        /// The new vmspace's id.
        id,
        /// Must be 0.
        ty,
        /// Must be 0.
        data,
    },
    /// `vmspace_destroy(id)`.
    VmspaceDestroy {
        /// The vmspace.
        id,
    },
    /// `vmspace_ctl(id, cmd, tframe, vframe, timeout_us)`.
    VmspaceCtl {
        /// The vmspace.
        id,
        /// [`crate::VMSPACE_CTL_RUN`].
        cmd,
        /// Guest-physical address of the [`crate::TrapFrame`].
        tframe,
        /// Guest-physical address of the [`crate::VextFrame`].
        vframe,
        /// Time slice in µs (0: none).
        timeout_us,
    },
    /// `vmspace_mmap(id, addr, len, prot, flags, fd, off)`.
    VmspaceMmap {
        /// The vmspace.
        id,
        /// Address (a hint, or exact with `MAP_FIXED`).
        addr,
        /// Length in bytes.
        len,
        /// `PROT_*` bits.
        prot,
        /// `MAP_*` bits.
        flags,
        /// -1, or [`crate::mman::PHYSMEM_FD`].
        fd,
        /// Offset into `fd` (guest-physical for `PHYSMEM_FD`).
        off,
    },
    /// `vmspace_munmap(id, addr, len)`.
    VmspaceMunmap {
        /// The vmspace.
        id,
        /// Start address.
        addr,
        /// Length in bytes.
        len,
    },
    /// `vmspace_pread(id, buf, len, flags, off)`.
    VmspacePread {
        /// The vmspace.
        id,
        /// Guest-physical address of the kernel's buffer.
        buf,
        /// Bytes to copy.
        len,
        /// Must be 0.
        flags,
        /// Vmspace address to copy from.
        off,
    },
    /// `vmspace_pwrite(id, buf, len, flags, off)`.
    VmspacePwrite {
        /// The vmspace.
        id,
        /// Guest-physical address of the kernel's buffer.
        buf,
        /// Bytes to copy.
        len,
        /// Must be 0.
        flags,
        /// Vmspace address to copy to.
        off,
    },
    /// `vmspace_mcontrol(id, addr, len, behav, value)`.
    VmspaceMcontrol {
        /// The vmspace.
        id,
        /// Start address.
        addr,
        /// Length in bytes.
        len,
        /// `MADV_*`.
        behav,
        /// The behaviour's argument (the root for `MADV_SETMAP`).
        value,
    },
    /// `vmspace_mprotect(id, addr, len, prot)`.
    VmspaceMprotect {
        /// The vmspace.
        id,
        /// Start address.
        addr,
        /// Length in bytes.
        len,
        /// `PROT_*` bits.
        prot,
    },
    /// `vmspace_clone(src, dst)`.
    VmspaceClone {
        /// The vmspace copied.
        src,
        /// The new vmspace's id.
        dst,
    },
    /// `vmspace_preadv(id, iov, iovcnt, flags, off)`.
    VmspacePreadv {
        /// The vmspace.
        id,
        /// Guest-physical address of an array of [`crate::KernelIovec`].
        iov,
        /// Its length (1 to [`crate::VMSPACE_IOV_MAX`]).
        iovcnt,
        /// Must be 0.
        flags,
        /// Vmspace address of the contiguous range copied from.
        off,
    },
    /// `vmspace_pwritev(id, iov, iovcnt, flags, off)`.
    VmspacePwritev {
        /// The vmspace.
        id,
        /// Guest-physical address of an array of [`crate::KernelIovec`].
        iov,
        /// Its length (1 to [`crate::VMSPACE_IOV_MAX`]).
        iovcnt,
        /// Must be 0.
        flags,
        /// Vmspace address of the contiguous range copied to.
        off,
    },
    /// `console_winsize(buf)`.
    ConsoleWinsize {
        /// Guest-physical address of the 8-byte `struct winsize`.
        buf,
    },
    /// `hostfs_root(volume)`.
    HostfsRoot {
        /// 0 for `--rootfs`, then the `--volume`s in order.
        volume,
    },
    /// `hostfs_walk(handle, name, name_len)`.
    HostfsWalk {
        /// A directory handle.
        handle,
        /// Guest-physical address of the name's bytes.
        name,
        /// Its length (1 to [`crate::HOSTFS_NAME_MAX`]).
        name_len,
    },
    /// `hostfs_getattr(handle, buf)`.
    HostfsGetattr {
        /// Any handle.
        handle,
        /// Guest-physical address of a [`crate::HostfsStat`].
        buf,
    },
    /// `hostfs_readdir(handle, cookie, buf, len)`.
    HostfsReaddir {
        /// A directory handle.
        handle,
        /// 0, or the `d_off` of the last record read.
        cookie,
        /// Guest-physical address of the buffer.
        buf,
        /// Its size in bytes.
        len,
    },
    /// `hostfs_read(handle, buf, len, off)`.
    HostfsRead {
        /// A regular file's handle.
        handle,
        /// Guest-physical address of the buffer.
        buf,
        /// Bytes wanted.
        len,
        /// File offset.
        off,
    },
    /// `hostfs_readlink(handle, buf, len)`.
    HostfsReadlink {
        /// A symbolic link's handle.
        handle,
        /// Guest-physical address of the buffer.
        buf,
        /// Its size in bytes.
        len,
    },
    /// `hostfs_clunk(handle)`.
    HostfsClunk {
        /// The handle dropped.
        handle,
    },
    /// `hostfs_readv(handle, iov, iovcnt, off)`.
    HostfsReadv {
        /// A regular file's handle.
        handle,
        /// Guest-physical address of an array of [`crate::KernelIovec`].
        iov,
        /// Its length (1 to [`crate::HOSTFS_IOV_MAX`]).
        iovcnt,
        /// File offset.
        off,
    },
    /// `hostfs_create(dir, name, name_len, mode)`.
    HostfsCreate {
        /// A directory handle on a writable volume.
        dir,
        /// Guest-physical address of the name's bytes.
        name,
        /// Its length (1 to [`crate::HOSTFS_NAME_MAX`]).
        name_len,
        /// `S_IFREG`, `S_IFDIR`, `S_IFIFO` or `S_IFSOCK`, and permission bits.
        mode,
    },
    /// `hostfs_symlink(dir, name, name_len, target, target_len)`.
    HostfsSymlink {
        /// A directory handle on a writable volume.
        dir,
        /// Guest-physical address of the name's bytes.
        name,
        /// Its length.
        name_len,
        /// Guest-physical address of the target's bytes.
        target,
        /// Its length (1 to [`crate::HOSTFS_TARGET_MAX`]).
        target_len,
    },
    /// `hostfs_link(handle, dir, name, name_len)`.
    HostfsLink {
        /// The file linked (not a directory).
        handle,
        /// A directory handle on the same volume.
        dir,
        /// Guest-physical address of the new name's bytes.
        name,
        /// Its length.
        name_len,
    },
    /// `hostfs_unlink(dir, name, name_len, flags)`.
    HostfsUnlink {
        /// A directory handle on a writable volume.
        dir,
        /// Guest-physical address of the name's bytes.
        name,
        /// Its length.
        name_len,
        /// 0, or [`crate::HOSTFS_REMOVEDIR`].
        flags,
    },
    /// `hostfs_rename(olddir, oldname, oldname_len, newdir, newname,
    /// newname_len, flags)`.
    HostfsRename {
        /// The directory holding the entry.
        olddir,
        /// Guest-physical address of its name.
        oldname,
        /// Its length.
        oldname_len,
        /// The directory it moves to (same volume).
        newdir,
        /// Guest-physical address of the new name.
        newname,
        /// Its length.
        newname_len,
        /// `renameat2` flags: 0, `RENAME_NOREPLACE` or `RENAME_EXCHANGE`.
        flags,
    },
    /// `hostfs_writev(handle, iov, iovcnt, off)`.
    HostfsWritev {
        /// A regular file's handle on a writable volume.
        handle,
        /// Guest-physical address of an array of [`crate::KernelIovec`].
        iov,
        /// Its length (1 to [`crate::HOSTFS_IOV_MAX`]).
        iovcnt,
        /// File offset.
        off,
    },
    /// `hostfs_setattr(handle, valid, mode, size, atime_ns, mtime_ns)`.
    HostfsSetattr {
        /// Any handle on a writable volume.
        handle,
        /// `HOSTFS_SET_*` bits.
        valid,
        /// Permission bits (07777).
        mode,
        /// The new size.
        size,
        /// Access time, ns since the epoch.
        atime_ns,
        /// Modification time, ns since the epoch.
        mtime_ns,
    },
    /// `hostfs_fsync(handle, datasync)`.
    HostfsFsync {
        /// A regular file's or directory's handle.
        handle,
        /// 1: `fdatasync`.
        datasync,
    },
    /// `hostfs_chown(handle, uid, gid)`.
    HostfsChown {
        /// Any handle on a writable volume.
        handle,
        /// The new owner (`u32::MAX`: unchanged).
        uid,
        /// The new group (`u32::MAX`: unchanged).
        gid,
    },
    /// `batch(entries, count)`.
    Batch {
        /// Guest-physical address of the [`crate::BatchEntry`] array.
        entries,
        /// How many (at most [`crate::BATCH_MAX`]).
        count,
    },
    /// `vmspace_ctl_batch(entries, count, id, cmd, tframe, vframe, timeout_us)`.
    VmspaceCtlBatch {
        /// Guest-physical address of the [`crate::BatchEntry`] array.
        entries,
        /// How many (at most [`crate::BATCH_MAX`]; 0: a plain ctl).
        count,
        /// The vmspace to run, as `vmspace_ctl`'s.
        id,
        /// As `vmspace_ctl`'s.
        cmd,
        /// As `vmspace_ctl`'s.
        tframe,
        /// As `vmspace_ctl`'s.
        vframe,
        /// As `vmspace_ctl`'s.
        timeout_us,
    },
    /// `vmspace_copy(dst, dst_addr, src, src_addr, len)`.
    VmspaceCopy {
        /// The vmspace copied to.
        dst,
        /// Its address the bytes go to.
        dst_addr,
        /// The vmspace copied from (may be `dst`).
        src,
        /// Its address the bytes come from.
        src_addr,
        /// Bytes (at most [`crate::VMSPACE_COPY_MAX`]).
        len,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_decode_agree_slot_by_slot() {
        let c = Call::VmspaceMmap {
            id: 1,
            addr: 2,
            len: 3,
            prot: 4,
            flags: 5,
            fd: 6,
            off: 7,
        };
        let b = c.encode();
        assert_eq!(b.args, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(Call::decode(Hypercall::VmspaceMmap as u16, &b), Ok(c));
        let c = Call::VmspaceCtl {
            id: 9,
            cmd: 1,
            tframe: 0x1000,
            vframe: 0x2000,
            timeout_us: 10,
        };
        let b = c.encode();
        assert_eq!(b.args, [9, 1, 0x1000, 0x2000, 10, 0, 0]);
        assert_eq!(c.hypercall(), Hypercall::VmspaceCtl);
        assert_eq!(Call::decode(c.hypercall() as u16, &b), Ok(c));
    }

    #[test]
    fn every_number_round_trips() {
        let b = HypercallBlock {
            args: [11, 12, 13, 14, 15, 16, 17],
            ..Default::default()
        };
        for nr in 0..64u16 {
            match Call::decode(nr, &b) {
                Ok(c) => {
                    assert_eq!(c.hypercall() as u16, nr);
                    // Slots the call does not use encode as 0.
                    let e = c.encode();
                    assert!(e.args.iter().zip(b.args).all(|(&x, y)| x == y || x == 0));
                    assert_eq!(Call::decode(nr, &e), Ok(c));
                }
                Err(e) => {
                    assert_eq!(e, UnknownHypercall(nr));
                    assert!(Hypercall::from_nr(nr).is_none());
                }
            }
        }
        assert_eq!(
            Call::decode(7, &b),
            Err(UnknownHypercall(7)),
            "7 is unassigned"
        );
    }
}
