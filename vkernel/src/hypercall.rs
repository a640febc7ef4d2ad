//! Hypercall dispatch: read the argument block the guest kernel named,
//! decode it into a [`Call`], carry it out in the one `match` below (Solo5's
//! `hvt_core_hypercalls[]`), write `ret`/`errno` back. A block the host
//! cannot read (outside RAM, across its end, misaligned) breaks the
//! protocol: there is nowhere to put an errno, so the guest is stopped.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use vkernel_abi::{
    BatchEntry, Call, Errno, Hypercall, HypercallBlock, UnknownHypercall, BATCH_MAX,
    CLOCK_REALTIME, HC_PORT_BASE, HC_PORT_COUNT, HYPERCALL_BLOCK_SIZE,
};
use vmspace::{KernelRam, VmspaceRegistry};

use crate::console;
use crate::hostfs::HostFs;
use crate::idle::Idle;
use crate::machine::switch::Ctl;
use crate::machine::{Handled, Machine, Stop};
use crate::vcpu::Vcpu;

/// A hypercall the host refused to carry out: the guest is stopped.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The block is not wholly inside guest RAM.
    #[error("hypercall {name} (port {port:#x}): argument block at {addr:#x} is not inside guest memory [0, {ram:#x}) (it needs {size} bytes)")]
    BlockOutside {
        /// Hypercall name.
        name: String,
        /// Port used.
        port: u16,
        /// Block address.
        addr: u64,
        /// RAM size.
        ram: u64,
        /// Block size.
        size: usize,
    },
    /// The block address is not 8-byte aligned.
    #[error(
        "hypercall {name} (port {port:#x}): argument block at {addr:#x} is not 8-byte aligned"
    )]
    BlockMisaligned {
        /// Hypercall name.
        name: String,
        /// Port used.
        port: u16,
        /// Block address.
        addr: u64,
    },
    /// The `out` was not a 4-byte `out dx, eax`.
    #[error(
        "hypercall port {port:#x} written with a {len}-byte out; hypercalls use `out dx, eax`"
    )]
    BadWidth {
        /// Port used.
        port: u16,
        /// Width of the access.
        len: usize,
    },
}

/// The name of hypercall `nr`, for messages.
pub fn name(nr: u16) -> String {
    match Hypercall::from_nr(nr) {
        Some(hc) => format!("{hc:?}"),
        None => format!("#{nr}"),
    }
}

/// Reads and checks the argument block at `addr`.
pub fn read_block(
    ram: &KernelRam,
    port: u16,
    nr: u16,
    addr: u64,
) -> Result<HypercallBlock, ProtocolError> {
    if !addr.is_multiple_of(8) {
        return Err(ProtocolError::BlockMisaligned {
            name: name(nr),
            port,
            addr,
        });
    }
    ram.read_obj(addr).map_err(|_| ProtocolError::BlockOutside {
        name: name(nr),
        port,
        addr,
        ram: ram.len(),
        size: HYPERCALL_BLOCK_SIZE,
    })
}

/// Writes the result into the block at `addr` (already read by
/// [`read_block`], so inside RAM).
pub fn write_result(ram: &KernelRam, addr: u64, result: Result<i64, Errno>) {
    let (ret, errno) = match result {
        Ok(v) => (v, 0i64),
        Err(e) => (-1, e.0 as i64),
    };
    let mut tail = [0u8; 16];
    tail[..8].copy_from_slice(&ret.to_le_bytes());
    tail[8..].copy_from_slice(&errno.to_le_bytes());
    let at = addr + std::mem::offset_of!(HypercallBlock, ret) as u64;
    // The block was read from RAM: a failure here cannot happen.
    let _ = ram.write_slice(at, &tail);
}

/// Per-VM hypercall state (not the vmspaces: those are in the registry).
pub struct Hypercalls {
    started: Instant,
    unknown_logged: HashSet<u16>,
    idle: Idle,
    /// The host directories served to the guest (none unless set).
    pub(crate) hostfs: HostFs,
}

impl Hypercalls {
    /// Hypercall state; the clock starts now.
    pub fn new() -> std::io::Result<Self> {
        Ok(Hypercalls {
            started: crate::host_start(),
            unknown_logged: HashSet::new(),
            idle: Idle::new()?,
            hostfs: HostFs::new(&[]).map_err(std::io::Error::other)?,
        })
    }

    /// Monotonic ns since the host started (the guest's clock).
    fn monotonic_ns(&self) -> i64 {
        self.started.elapsed().as_nanos() as i64
    }
}

/// Whether the slice timer may stay armed across `call` (see
/// `SliceTimer`): the calls that never block in the host. Its signal
/// could interrupt any other call's host system call (EINTR), so the
/// timer is disarmed before them.
fn keeps_slice_timer(call: &Call) -> bool {
    matches!(
        call,
        Call::Noop {}
            | Call::Clock { .. }
            | Call::PoolStats {}
            | Call::VmspaceCreate { .. }
            | Call::VmspaceDestroy { .. }
            | Call::VmspaceCtl { .. }
            | Call::VmspaceMmap { .. }
            | Call::VmspaceMunmap { .. }
            | Call::VmspacePread { .. }
            | Call::VmspacePwrite { .. }
            | Call::VmspacePreadv { .. }
            | Call::VmspacePwritev { .. }
            | Call::VmspaceMcontrol { .. }
            | Call::VmspaceMprotect { .. }
            | Call::VmspaceClone { .. }
            | Call::VmspaceCopy { .. }
            | Call::Batch { .. }
            | Call::VmspaceCtlBatch { .. }
    )
}

impl<V: Vcpu> Machine<V> {
    /// The user typed the escape (Ctrl-] q) in the host terminal: the run
    /// ends with [`crate::terminal::EXIT_ESCAPE`], whatever the guest does.
    fn escape(&mut self, addr: u64) -> Result<(), Stop> {
        if !self.hypercalls.idle.escaped {
            return Ok(());
        }
        crate::terminal::restore();
        crate::report!("vkernel: Ctrl-] q: run ended");
        write_result(&self.guest.ram, addr, Ok(0));
        Err(Stop::Exit(crate::terminal::EXIT_ESCAPE.into()))
    }

    /// The guest kernel's `out` to hypercall port `port` with the block's
    /// address in `value`.
    pub(crate) fn on_hypercall(&mut self, port: u16, len: usize, value: u32) -> Handled {
        self.stats.hypercalls += 1;
        let nr = port - HC_PORT_BASE;
        self.stats.hypercalls_by_nr[nr as usize] += 1;
        let t0 = self.exited_at;
        let handled = self.dispatch_hypercall(port, nr, len, value);
        self.stats.hypercall_ns_by_nr[nr as usize] += t0.elapsed().as_nanos() as u64;
        handled
    }

    /// Carries out the `count` [`BatchEntry`]s at `entries` in order (Xen's
    /// multicall), each as its own hypercall would be, its result written
    /// into it; stops at the first whose result is not the one it
    /// expected, and marks the rest ECANCELED. Returns how many met their
    /// expectation. Every entry is checked before any is carried out
    /// (the array wholly in RAM, the count capped), so a malformed batch
    /// does nothing.
    /// `vmspace_ctl_batch` (a plain `vmspace_ctl` for `count` 0): the
    /// batch, then, when every entry met its expectation, the switch to
    /// the process. `None`: the process is on the vCPU; else the errno
    /// the call returns (ECANCELED for an unmet entry: nothing ran).
    fn batch_then_run(
        &mut self,
        block: u64,
        entries: u64,
        count: u64,
        ctl: Ctl,
    ) -> Result<Option<Errno>, Stop> {
        if count > 0 {
            match self.run_batch(entries, count) {
                Err(e) => return Ok(Some(e)),
                Ok(met) if met < count => return Ok(Some(Errno::ECANCELED)),
                Ok(_) => {}
            }
        }
        Ok(self.enter_process(block, ctl)?.err())
    }

    fn run_batch(&mut self, entries: u64, count: u64) -> Result<u64, Errno> {
        if count > BATCH_MAX {
            return Err(Errno::EINVAL);
        }
        let size = std::mem::size_of::<BatchEntry>() as u64;
        if !entries.is_multiple_of(8) || !self.guest.ram.contains(entries, count * size) {
            return Err(Errno::EFAULT);
        }
        let mut met = count;
        for i in 0..count {
            let at = entries + i * size;
            let mut entry: BatchEntry = self.guest.ram.read_obj(at)?;
            let result = if met < count {
                Err(Errno::ECANCELED)
            } else {
                let t0 = Instant::now();
                let nr = u16::try_from(entry.nr).ok();
                let call = nr.and_then(|nr| {
                    Call::decode(
                        nr,
                        &HypercallBlock {
                            args: entry.args,
                            ret: 0,
                            errno: 0,
                        },
                    )
                    .ok()
                });
                // Only the vmspace family: nothing that switches context,
                // blocks, ends the run or nests another batch.
                let result = call
                    .and_then(|c| {
                        log::trace!("HC batched {c:x?}");
                        vmspace_call(&mut self.guest.registry, c)
                    })
                    .unwrap_or(Err(Errno::EINVAL));
                if let Some(nr) = nr.filter(|&nr| nr < HC_PORT_COUNT) {
                    self.stats.hypercalls_by_nr[nr as usize] += 1;
                    self.stats.hypercall_ns_by_nr[nr as usize] += t0.elapsed().as_nanos() as u64;
                    if self.flush_asker.is_none()
                        && self.guest.registry.translation_reduced_pending()
                    {
                        self.flush_asker = Some(nr);
                    }
                }
                self.stats.batched += 1;
                result
            };
            (entry.ret, entry.errno) = match result {
                Ok(v) => (v, 0),
                Err(e) => (-1, e.0 as i64),
            };
            if met == count && !entry.met() {
                met = i;
            }
            // Inside RAM: checked above.
            let _ = self.guest.ram.write_obj(at, &entry);
        }
        Ok(met)
    }

    /// [`Machine::on_hypercall`]'s work.
    fn dispatch_hypercall(&mut self, port: u16, nr: u16, len: usize, value: u32) -> Handled {
        if len != 4 {
            return Err(ProtocolError::BadWidth { port, len }.into());
        }
        let addr = value as u64;
        let block = read_block(&self.guest.ram, port, nr, addr)?;
        // The kernel is here anyway: keep its clock page fresh.
        self.clock
            .refresh(&self.vcpu, &self.guest.ram, false, self.exited_at);
        let call = match Call::decode(nr, &block) {
            Ok(call) => {
                log::trace!("HC {call:x?}");
                call
            }
            Err(UnknownHypercall(nr)) => {
                if self.hypercalls.unknown_logged.insert(nr) {
                    log::warn!("guest kernel called unknown hypercall {nr}: ENOSYS");
                }
                write_result(&self.guest.ram, addr, Err(Errno::ENOSYS));
                return Ok(());
            }
        };
        if !keeps_slice_timer(&call) {
            self.timer.disarm();
        }
        let registry = &mut self.guest.registry;
        let result = match call {
            Call::Noop {} => Ok(0),
            Call::ConsoleWrite { buf, len, stream } => {
                console::write(&self.guest.ram, buf, len, stream)
            }
            Call::Exit { status } => {
                write_result(&self.guest.ram, addr, Ok(0));
                return Err(Stop::Exit(status as i32));
            }
            Call::Clock { which } if which == CLOCK_REALTIME => Ok(realtime_ns()),
            Call::Clock { .. } => Ok(self.hypercalls.monotonic_ns()),
            Call::PoolStats {} => Ok(registry.pages_in_use() as i64),
            Call::ConsoleRead { buf, len } => {
                let r = self.hypercalls.idle.read(&self.guest.ram, buf, len);
                self.escape(addr)?;
                r
            }
            Call::ConsoleWinsize { buf } => crate::terminal::winsize(&self.guest.ram, buf),
            Call::Idle { deadline_ns } => {
                let h = &mut self.hypercalls;
                let deadline =
                    (deadline_ns != 0).then(|| h.started + Duration::from_nanos(deadline_ns));
                let bits = h.idle.wait(deadline);
                // After a sleep of any length, the page is stale.
                self.clock
                    .refresh(&self.vcpu, &self.guest.ram, true, Instant::now());
                self.escape(addr)?;
                Ok(bits)
            }
            Call::VmspaceCtl {
                id,
                cmd,
                tframe,
                vframe,
                timeout_us,
            } => {
                let ctl = Ctl {
                    id,
                    cmd,
                    tframe,
                    vframe,
                    timeout_us,
                };
                match self.batch_then_run(addr, 0, 0, ctl)? {
                    // Entered the process: the result is written when it traps.
                    None => return Ok(()),
                    Some(e) => Err(e),
                }
            }
            Call::VmspaceCtlBatch {
                entries,
                count,
                id,
                cmd,
                tframe,
                vframe,
                timeout_us,
            } => {
                let ctl = Ctl {
                    id,
                    cmd,
                    tframe,
                    vframe,
                    timeout_us,
                };
                match self.batch_then_run(addr, entries, count, ctl)? {
                    None => return Ok(()),
                    Some(e) => Err(e),
                }
            }
            Call::Batch { entries, count } => self.run_batch(entries, count).map(|n| n as i64),
            Call::VmspaceCreate { .. }
            | Call::VmspaceDestroy { .. }
            | Call::VmspaceMmap { .. }
            | Call::VmspaceMunmap { .. }
            | Call::VmspacePread { .. }
            | Call::VmspacePwrite { .. }
            | Call::VmspacePreadv { .. }
            | Call::VmspacePwritev { .. }
            | Call::VmspaceMcontrol { .. }
            | Call::VmspaceMprotect { .. }
            | Call::VmspaceClone { .. }
            | Call::VmspaceCopy { .. } => {
                vmspace_call(registry, call).unwrap_or(Err(Errno::ENOSYS))
            }
            Call::HostfsRoot { volume } => self.hypercalls.hostfs.root(volume),
            Call::HostfsWalk {
                handle,
                name,
                name_len,
            } => self
                .hypercalls
                .hostfs
                .walk(&self.guest.ram, handle, name, name_len),
            Call::HostfsGetattr { handle, buf } => {
                self.hypercalls.hostfs.getattr(&self.guest.ram, handle, buf)
            }
            Call::HostfsReaddir {
                handle,
                cookie,
                buf,
                len,
            } => self
                .hypercalls
                .hostfs
                .readdir(&self.guest.ram, handle, cookie, buf, len),
            Call::HostfsRead {
                handle,
                buf,
                len,
                off,
            } => self
                .hypercalls
                .hostfs
                .read(&self.guest.ram, handle, buf, len, off),
            Call::HostfsReadlink { handle, buf, len } => {
                self.hypercalls
                    .hostfs
                    .readlink(&self.guest.ram, handle, buf, len)
            }
            Call::HostfsClunk { handle } => self.hypercalls.hostfs.clunk(handle),
            Call::HostfsReadv {
                handle,
                iov,
                iovcnt,
                off,
            } => self
                .hypercalls
                .hostfs
                .readv(&self.guest.ram, handle, iov, iovcnt, off),
            Call::HostfsCreate {
                dir,
                name,
                name_len,
                mode,
            } => self
                .hypercalls
                .hostfs
                .create(&self.guest.ram, dir, name, name_len, mode),
            Call::HostfsSymlink {
                dir,
                name,
                name_len,
                target,
                target_len,
            } => self.hypercalls.hostfs.symlink(
                &self.guest.ram,
                dir,
                name,
                name_len,
                target,
                target_len,
            ),
            Call::HostfsLink {
                handle,
                dir,
                name,
                name_len,
            } => self
                .hypercalls
                .hostfs
                .link(&self.guest.ram, handle, dir, name, name_len),
            Call::HostfsUnlink {
                dir,
                name,
                name_len,
                flags,
            } => self
                .hypercalls
                .hostfs
                .unlink(&self.guest.ram, dir, name, name_len, flags),
            Call::HostfsRename {
                olddir,
                oldname,
                oldname_len,
                newdir,
                newname,
                newname_len,
                flags,
            } => self.hypercalls.hostfs.rename(
                &self.guest.ram,
                olddir,
                oldname,
                oldname_len,
                newdir,
                newname,
                newname_len,
                flags,
            ),
            Call::HostfsWritev {
                handle,
                iov,
                iovcnt,
                off,
            } => self
                .hypercalls
                .hostfs
                .writev(&self.guest.ram, handle, iov, iovcnt, off),
            Call::HostfsSetattr {
                handle,
                valid,
                mode,
                size,
                atime_ns,
                mtime_ns,
            } => self
                .hypercalls
                .hostfs
                .setattr(handle, valid, mode, size, atime_ns, mtime_ns),
            Call::HostfsFsync { handle, datasync } => {
                self.hypercalls.hostfs.fsync(handle, datasync)
            }
            Call::HostfsChown { handle, uid, gid } => {
                self.hypercalls.hostfs.chown(handle, uid, gid)
            }
        };
        write_result(&self.guest.ram, addr, result);
        if self.flush_asker.is_none() && self.guest.registry.translation_reduced_pending() {
            self.flush_asker = Some(nr);
        }
        Ok(())
    }
}

/// The vmspace calls that neither switch context nor block: the ones a
/// batch may carry. `None` for any other call.
fn vmspace_call(registry: &mut VmspaceRegistry, call: Call) -> Option<Result<i64, Errno>> {
    Some(match call {
        Call::VmspaceCreate { id, ty, data } => registry.create(id, ty, data).map(|()| 0),
        Call::VmspaceDestroy { id } => registry.destroy(id).map(|()| 0),
        Call::VmspaceMmap {
            id,
            addr,
            len,
            prot,
            flags,
            fd,
            off,
        } => registry
            .mmap(id, addr, len, prot, flags, fd, off)
            .map(|v| v as i64),
        Call::VmspaceMunmap { id, addr, len } => registry.munmap(id, addr, len).map(|()| 0),
        // No pread/pwrite(v) flags are defined: refuse any, so they can be
        // given a meaning later without silently changing behaviour.
        Call::VmspacePread { flags, .. }
        | Call::VmspacePwrite { flags, .. }
        | Call::VmspacePreadv { flags, .. }
        | Call::VmspacePwritev { flags, .. }
            if flags != 0 =>
        {
            Err(Errno::EINVAL)
        }
        Call::VmspacePread {
            id, buf, len, off, ..
        } => registry.pread(id, buf, len, off).map(|n| n as i64),
        Call::VmspacePwrite {
            id, buf, len, off, ..
        } => registry.pwrite(id, buf, len, off).map(|n| n as i64),
        Call::VmspacePreadv {
            id,
            iov,
            iovcnt,
            off,
            ..
        } => registry.preadv(id, iov, iovcnt, off).map(|n| n as i64),
        Call::VmspacePwritev {
            id,
            iov,
            iovcnt,
            off,
            ..
        } => registry.pwritev(id, iov, iovcnt, off).map(|n| n as i64),
        Call::VmspaceMcontrol {
            id,
            addr,
            len,
            behav,
            value,
        } => registry.mcontrol(id, addr, len, behav, value).map(|()| 0),
        Call::VmspaceMprotect {
            id,
            addr,
            len,
            prot,
        } => registry.mprotect(id, addr, len, prot).map(|()| 0),
        Call::VmspaceClone { src, dst } => registry.clone_vmspace(src, dst).map(|()| 0),
        // Batchable: a pipe's hand-over goes with the next RUN.
        Call::VmspaceCopy {
            dst,
            dst_addr,
            src,
            src_addr,
            len,
        } => registry
            .copy_between(dst, dst_addr, src, src_addr, len)
            .map(|n| n as i64),
        Call::Noop {} => Ok(0),
        Call::PoolStats {} => Ok(registry.pages_in_use() as i64),
        _ => return None,
    })
}

/// Wall-clock time in nanoseconds since the Unix epoch (0 if the host
/// clock is before it).
fn realtime_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
