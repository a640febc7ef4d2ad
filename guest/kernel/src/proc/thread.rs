//! Tasks and thread groups, as Linux has them: every [`Proc`] slot is a
//! task (a schedulable context: its own tid, registers, TLS bases, FPU
//! image, signal mask and pending set, alternate stack, clear_child_tid,
//! robust list and sleep state). A process is the group of tasks sharing a
//! `tgid` (the leader's pid). The group shares, through `Rc`s the tasks
//! hold, what clone's flags say: the address space (CLONE_VM), the
//! descriptor table (CLONE_FILES), the dispositions (CLONE_SIGHAND),
//! cwd and umask (CLONE_FS, see [`ProcTable::sync_fs`]); and by identity
//! its pid, parent, process group and session.
//!
//! How a group ends (Linux's do_exit / do_group_exit / release_task):
//! - `exit` ends one task. Its tid is cleared and futex-woken
//!   (CLONE_CHILD_CLEARTID, what pthread_join waits for) and its robust
//!   list walked. A thread other than the leader is freed at once (threads
//!   are never waited for); a leader that ends before its threads stays a
//!   zombie, invisible to wait4, until the last of them ends (Linux's
//!   delay_group_leader). The last task's end is the process's: the
//!   leader becomes the zombie the parent waits for.
//! - `exit_group` (and a fatal signal) ends every task of the group, with
//!   the group's status.
//! - `execve` in a thread ends the others first, and the exec'ing task
//!   takes the leader's pid (Linux's de_thread).
//!
//! Signals sent to a process go to one of its tasks that does not block
//! them (see [`ProcTable::send_group`]); tgkill picks the task.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::signal::{self, SigInfo, SigSet};
use super::{futex, Chan, Pid, Proc, ProcTable, State};
use crate::mm::uaccess::{copy_in, copy_out, copy_out_posted, read_u64};
use crate::mm::Mm;
use linux_raw_sys::general as linux;
use vkernel_abi::layout::VM_MAX_USER_ADDRESS;
use vkernel_abi::Errno;

/// Clone flags as u64.
pub const CLONE_VM: u64 = linux::CLONE_VM as u64;
pub const CLONE_FS: u64 = linux::CLONE_FS as u64;
pub const CLONE_FILES: u64 = linux::CLONE_FILES as u64;
pub const CLONE_SIGHAND: u64 = linux::CLONE_SIGHAND as u64;
pub const CLONE_VFORK: u64 = linux::CLONE_VFORK as u64;
pub const CLONE_PARENT: u64 = linux::CLONE_PARENT as u64;
pub const CLONE_THREAD: u64 = linux::CLONE_THREAD as u64;
pub const CLONE_SETTLS: u64 = linux::CLONE_SETTLS as u64;
pub const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// What a clone makes (after the system call checked the flags).
pub struct CloneArgs {
    pub flags: u64,
    /// The new task's stack pointer (0: the caller's).
    pub stack: u64,
    pub tls: u64,
    /// The signal the parent gets when the child process ends (0: none).
    pub exit_signal: i32,
}

/// Robust futex words (linux/futex.h).
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's ROBUST_LIST_LIMIT: a list longer than this (or circular) is
/// walked no further.
const ROBUST_LIST_LIMIT: usize = 2048;

impl ProcTable {
    /// The slots of group `tgid`'s tasks (a held zombie leader included).
    pub fn group(&self, tgid: Pid) -> Vec<usize> {
        (0..self.procs.len())
            .filter(|&t| self.procs[t].state != State::Free && self.procs[t].tgid == tgid)
            .collect()
    }

    /// Whether group `tgid` has a live task other than slot `except`.
    pub fn group_alive(&self, tgid: Pid, except: Option<usize>) -> bool {
        self.procs
            .iter()
            .enumerate()
            .any(|(t, p)| Some(t) != except && p.tgid == tgid && p.alive())
    }

    /// clone: a new task made from task `s` as `a` says, runnable, its
    /// clone returning 0 on `a.stack`. Returns its slot. `EAGAIN` at
    /// `threads-max` tasks or without kernel heap for another (see
    /// [`ProcTable::alloc`]), `ENOMEM` without memory for its FPU image or
    /// space.
    ///
    /// `RLIMIT_NPROC` is Linux's: it counts the tasks of the caller's real
    /// user, and Linux lets root (`INIT_USER`) exceed it. Every process
    /// here runs as root (uid 0; there is no setuid), so it is kept and
    /// reported but never refuses a clone: `threads-max`, which binds root
    /// too, does.
    pub fn clone_task(&mut self, mm: &mut Mm, s: usize, a: &CloneArgs) -> Result<usize, Errno> {
        let thread = a.flags & CLONE_THREAD != 0;
        if self.nr_tasks as u64 >= self.threads_max {
            return Err(Errno::EAGAIN);
        }
        let fpu = self.fpu_copy(s).ok_or(Errno::ENOMEM)?;
        let me = &self.procs[s];
        let parent = if thread || a.flags & CLONE_PARENT != 0 {
            me.parent
        } else {
            me.tgid
        };
        let space = if a.flags & CLONE_VM != 0 {
            me.space()
        } else {
            mm.fork_space(&me.space(), me.tf.rsp).map_err(|e| {
                if e == Errno::ENOMEM {
                    e
                } else {
                    Errno::EAGAIN
                }
            })?
        };
        let c = self.alloc(parent).ok_or(Errno::EAGAIN)?;
        let me = &self.procs[s];
        let files = if a.flags & CLONE_FILES != 0 {
            me.files.clone()
        } else {
            Rc::new(RefCell::new(me.files.borrow().clone()))
        };
        let fs_share = if a.flags & CLONE_FS != 0 {
            me.fs_share.clone()
        } else {
            Rc::new(())
        };
        let actions = if a.flags & CLONE_SIGHAND != 0 {
            me.actions.clone()
        } else {
            let mut copy = signal::Actions(me.actions.borrow().0);
            if a.flags & CLONE_CLEAR_SIGHAND != 0 {
                copy.reset_for_exec();
            }
            Rc::new(RefCell::new(copy))
        };
        // A thread on its own stack starts without the alternate stack
        // (Linux: CLONE_VM without CLONE_VFORK clears it).
        let altstack = if a.flags & (CLONE_VM | CLONE_VFORK) == CLONE_VM {
            signal::AltStack::disabled()
        } else {
            me.sig.altstack
        };
        let tgid = if thread { me.tgid } else { 0 };
        let (mask, pgid, sid, did_exec) = (me.sig.mask, me.pgid, me.sid, me.did_exec);
        let (dumpable, no_new_privs) = (me.dumpable, me.no_new_privs);
        let (tf, vf, pkru, rlimits) = (me.tf, me.vf, me.pkru, me.rlimits);
        let (name, name_len) = (me.name, me.name_len);
        let (cwd, cwd_path, umask) = (me.cwd.clone(), me.cwd_path.clone(), me.umask);
        let (groups, creds) = (me.groups.clone(), me.creds);
        let parent_task = me.task.clone();
        let child = &mut self.procs[c];
        if thread {
            child.tgid = tgid;
            child.did_exec = did_exec;
        }
        child.exit_signal = if thread { 0 } else { a.exit_signal };
        child.dumpable = dumpable;
        child.no_new_privs = no_new_privs;
        child.actions = actions;
        child.sig.mask = mask;
        child.sig.altstack = altstack;
        child.pgid = pgid;
        child.sid = sid;
        child.space = Some(space);
        child.files = files;
        child.fs_share = fs_share;
        child.cwd = cwd;
        child.cwd_path = cwd_path;
        child.umask = umask;
        child.groups = groups;
        child.set_creds(creds);
        child.tf = tf;
        child.tf.rax = 0;
        if a.stack != 0 {
            child.tf.rsp = a.stack;
        }
        child.vf = vf;
        child.pkru = pkru;
        if a.flags & CLONE_SETTLS != 0 {
            child.vf.tls[0].base = a.tls;
        }
        child.rlimits = rlimits;
        child.name = name;
        child.name_len = name_len;
        child.fpu = Some(fpu);
        child.vfork_parent = a.flags & CLONE_VFORK != 0;
        if let Some(t) = &child.task {
            if let Some(pt) = &parent_task {
                t.inherit(pt);
            }
            t.tgid.set(child.tgid);
            t.attach(&child.files, child.space.as_ref());
        }
        Ok(c)
    }

    /// The TLS base a clone may set (Linux: EPERM past the user half).
    pub fn check_tls(tls: u64) -> Result<(), Errno> {
        if tls >= VM_MAX_USER_ADDRESS {
            Err(Errno::EPERM)
        } else {
            Ok(())
        }
    }

    /// exit(2): ends task `slot` with wait status `status` (see the module
    /// comment); the last task of a group ends the process.
    pub fn exit(&mut self, slot: usize, status: i32) {
        self.release_task(slot);
        let (pid, tgid) = (self.procs[slot].pid, self.procs[slot].tgid);
        if self.group_alive(tgid, Some(slot)) {
            if pid == tgid {
                // The leader waits, a zombie, for the rest of its group.
                let p = &mut self.procs[slot];
                p.space = None;
                p.fpu = None;
                p.restart = false;
                p.wait_status = status;
                p.set_state(State::Zombie);
            } else {
                self.free_thread(slot);
            }
            return;
        }
        let leader = if pid == tgid {
            Some(slot)
        } else {
            self.find(tgid)
        };
        // The process's status: the group's if exit_group or a signal set
        // one, else the last thread's own (as Linux reports it).
        let status = leader
            .and_then(|l| self.procs[l].group_exit)
            .unwrap_or(status);
        match leader {
            Some(l) if l != slot => {
                self.free_thread(slot);
                self.exit_process(l, status);
            }
            _ => self.exit_process(slot, status),
        }
    }

    /// exit_group(2), or a fatal signal in task `slot`: every task of its
    /// group ends, the process with `status`.
    pub fn exit_group(&mut self, slot: usize, status: i32) {
        let tgid = self.procs[slot].tgid;
        if let Some(l) = self.find(tgid) {
            let g = &mut self.procs[l].group_exit;
            g.get_or_insert(status);
        }
        for t in self.group(tgid) {
            if t != slot && self.procs[t].alive() {
                self.exit(t, status);
            }
        }
        self.exit(slot, status);
    }

    /// What ends with task `slot` itself, whatever becomes of its group:
    /// its FPU registers, its clear_child_tid (zeroed and woken, if
    /// anyone else shares the space), its robust futexes, and a vfork
    /// parent's wait.
    fn release_task(&mut self, slot: usize) {
        self.hand_off_group_signals(slot);
        let p = &mut self.procs[slot];
        let (pid, ctid, robust) = (p.pid, p.clear_child_tid, p.robust_list);
        p.clear_child_tid = 0;
        p.robust_list = 0;
        if self.fpu_owner == Some(pid) {
            self.fpu_owner = None;
        }
        self.end_vfork(slot);
        let Some(space) = self.procs[slot].space.clone() else {
            return;
        };
        // Another task still runs in the space (this slot's reference
        // and `space` are two).
        let shared_space = Rc::strong_count(&space) > 2;
        // The walk only stores into this memory and wakes its waiters. When
        // the memory dies with the task and no other address space shares
        // a writable page of it, nobody can see either: the walk, whose
        // first read is a host round trip, is left out (every glibc
        // process has a robust list; a forked child's exit read it).
        if robust != 0 && (shared_space || space.borrow().shares_writes()) {
            self.exit_robust_list(&space, robust, pid);
        }
        // Linux clears the tid only when the memory outlives the task.
        // Posted (it goes with the next RUN, before anything reads the
        // word: a woken waiter's read is a hypercall, which sends it
        // first); as Linux, a failed clear is not reported.
        let ignore = super::posted::Tag::Ignore.encode();
        if ctid != 0 && shared_space && copy_out_posted(&space, ctid, &[0; 4], ignore).is_ok() {
            self.futex_wake(futex::key(&space, ctid, false), 1, u32::MAX);
        }
    }

    /// A vfork child execs or ends: its parent's vfork returns.
    pub fn end_vfork(&mut self, slot: usize) {
        let p = &mut self.procs[slot];
        if core::mem::take(&mut p.vfork_parent) {
            let pid = p.pid;
            self.wakeup(Chan::Vfork(pid));
        }
    }

    /// Walks the robust list at `head` of dying task `tid` (Linux's
    /// exit_robust_list): each futex it still owns gets FUTEX_OWNER_DIED
    /// (keeping FUTEX_WAITERS) and one waiter is woken, whose lock call
    /// then reports EOWNERDEAD. Bad pointers end the walk quietly.
    fn exit_robust_list(&mut self, space: &crate::mm::SpaceRef, head: u64, tid: Pid) {
        // The head's three words (next, futex_offset, list_op_pending) in
        // one copy: one host round trip instead of three.
        let mut words = [0u8; 24];
        if copy_in(space, head, &mut words).is_err() {
            return;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&words[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let (mut entry, offset, pending) = (word(0), word(1), word(2));
        let mut walked = 0;
        while entry != head && entry != 0 && walked < ROBUST_LIST_LIMIT {
            // Read the next entry first: the owner-died store may wake a
            // task that unlinks this one.
            let Ok(next) = read_u64(space, entry & !1) else {
                return;
            };
            if entry != pending {
                self.futex_death(space, (entry & !1).wrapping_add(offset), tid);
            }
            entry = next;
            walked += 1;
        }
        if pending != 0 {
            self.futex_death(space, (pending & !1).wrapping_add(offset), tid);
        }
    }

    /// Linux's handle_futex_death for the word at `uaddr`.
    fn futex_death(&mut self, space: &crate::mm::SpaceRef, uaddr: u64, tid: Pid) {
        if !uaddr.is_multiple_of(4) {
            return;
        }
        let mut w = [0u8; 4];
        if copy_in(space, uaddr, &mut w).is_err() {
            return;
        }
        let v = u32::from_le_bytes(w);
        if v & FUTEX_TID_MASK != tid {
            return;
        }
        let new = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        if copy_out(space, uaddr, &new.to_le_bytes()).is_ok() && v & FUTEX_WAITERS != 0 {
            self.futex_wake(futex::key(space, uaddr, false), 1, u32::MAX);
        }
    }

    /// Frees the slot of thread `slot`, which is not its group's leader:
    /// its CPU time stays with the process (the leader's slot).
    fn free_thread(&mut self, slot: usize) {
        let (cpu, tgid) = (self.procs[slot].cpu, self.procs[slot].tgid);
        self.free(slot);
        if let Some(l) = self.find(tgid) {
            self.procs[l].exited_threads_cpu.add(cpu);
        }
    }

    /// execve in task `s` of a group: the other tasks end, and `s` takes
    /// the leader's place (its pid, parent and record), as Linux's
    /// de_thread. Call at exec's point of no return.
    pub fn de_thread(&mut self, s: usize) {
        let (me, tgid) = (self.procs[s].pid, self.procs[s].tgid);
        for t in self.group(tgid) {
            if t != s && self.procs[t].pid != tgid {
                self.release_task(t);
                self.free_thread(t);
            }
        }
        if me != tgid {
            if let Some(l) = self.find(tgid) {
                self.release_task(l);
                let leader = &mut self.procs[l];
                let task = leader.task.take();
                let (parent, exit_signal) = (leader.parent, leader.exit_signal);
                let (timer, report) = (leader.real_timer, leader.stop_report);
                let timers = core::mem::take(&mut leader.timers);
                // The process's CPU time so far stays the process's.
                let mut spent = leader.cpu;
                spent.add(leader.exited_threads_cpu);
                let children_cpu = leader.children_cpu;
                self.procs[l] = Proc::empty();
                self.nr_tasks -= 1;
                if let Some(t) = self.procs[s].task.take() {
                    self.tasks.remove(t.pid);
                }
                let p = &mut self.procs[s];
                p.pid = tgid;
                p.parent = parent;
                p.exit_signal = exit_signal;
                p.real_timer = timer;
                p.timers = timers;
                p.exited_threads_cpu = spent;
                p.children_cpu = children_cpu;
                p.stop_report = report;
                p.task = task;
                let state = p.state;
                p.set_state(state);
                if self.fpu_owner == Some(me) {
                    self.fpu_owner = Some(tgid);
                }
            }
        }
        // The new image shares nothing with other processes: a descriptor
        // table or handler table still shared (CLONE_FILES or CLONE_SIGHAND
        // without CLONE_THREAD) is copied first.
        let p = &mut self.procs[s];
        p.group_exit = None;
        if Rc::strong_count(&p.files) > 1 {
            let copy = p.files.borrow().clone();
            p.files = Rc::new(RefCell::new(copy));
        }
        if Rc::strong_count(&p.actions) > 1 {
            let copy = signal::Actions(p.actions.borrow().0);
            p.actions = Rc::new(RefCell::new(copy));
        }
        self.end_vfork(s);
    }

    /// cwd or umask of task `s` changed: the tasks sharing them
    /// (CLONE_FS) see the change.
    pub fn sync_fs(&mut self, s: usize) {
        let p = &self.procs[s];
        let (share, cwd, path, umask) = (
            p.fs_share.clone(),
            p.cwd.clone(),
            p.cwd_path.clone(),
            p.umask,
        );
        for (t, q) in self.procs.iter_mut().enumerate() {
            if t != s && q.state != State::Free && Rc::ptr_eq(&q.fs_share, &share) {
                q.cwd.clone_from(&cwd);
                q.cwd_path.clone_from(&path);
                q.umask = umask;
                if let Some(r) = &q.task {
                    r.cwd.borrow_mut().clone_from(&path);
                    r.umask.set(umask);
                }
            }
        }
    }

    /// Sends `info` to the process of task `t` (kill, SIGCHLD): it goes to
    /// a live task of the group that does not block it — the leader first
    /// — or, if all block it, stays pending on the first live one (the
    /// leader if alive) until it unblocks it.
    pub fn send_group(&mut self, t: usize, info: SigInfo) -> Result<(), Errno> {
        let tgid = self.procs[t].tgid;
        let sig = info.signo();
        let mut tasks: Vec<usize> = self
            .group(tgid)
            .into_iter()
            .filter(|&x| self.procs[x].alive())
            .collect();
        // The leader first, then in tid order of the slots.
        tasks.sort_by_key(|&x| (self.procs[x].pid != tgid, self.procs[x].pid));
        let takes =
            |p: &Proc| !signal::valid(sig) || !p.sig.mask.has(sig) || p.sig.waiting.has(sig);
        let taker = tasks.iter().copied().find(|&x| takes(&self.procs[x]));
        match taker.or(tasks.first().copied()) {
            Some(x) => {
                self.send(x, info)?;
                // Held for the process: the first thread to let it in
                // takes it (see adopt_group_signals).
                if taker.is_none() && signal::valid(sig) && self.procs[x].sig.pending.has(sig) {
                    self.procs[x].sig.shared.add(sig);
                }
                Ok(())
            }
            // A zombie: the call succeeds, nothing takes the signal.
            None => Ok(()),
        }
    }

    /// Task `s` now lets in (unblocked, or waits for) signals its peers
    /// hold for the process while blocking them: it takes those, as a
    /// thread takes from Linux's shared pending set.
    pub fn adopt_group_signals(&mut self, s: usize) {
        let me = &self.procs[s].sig;
        let open = !me.mask.0 | me.waiting.0;
        for t in self.group_peers(s) {
            let q = &mut self.procs[t].sig;
            let movable = SigSet(q.shared.0 & q.pending.0 & q.mask.0 & open);
            if movable == SigSet::EMPTY {
                continue;
            }
            let (got, infos) = q.take(movable);
            self.procs[s].sig.put(got, infos);
        }
    }

    /// Task `slot` ends: signals it held for the process go to a live
    /// peer (the leader first), so they are not lost with it.
    fn hand_off_group_signals(&mut self, slot: usize) {
        let shared = self.procs[slot].sig.shared;
        if shared == SigSet::EMPTY {
            return;
        }
        let tgid = self.procs[slot].tgid;
        let mut peers: Vec<usize> = self
            .group_peers(slot)
            .into_iter()
            .filter(|&x| self.procs[x].alive())
            .collect();
        peers.sort_by_key(|&x| (self.procs[x].pid != tgid, self.procs[x].pid));
        let Some(&to) = peers
            .iter()
            .find(|&&x| self.procs[x].sig.mask.0 & shared.0 != shared.0)
            .or(peers.first())
        else {
            return;
        };
        let (got, infos) = self.procs[slot].sig.take(shared);
        self.procs[to].sig.put(got, infos);
        self.adopt_group_signals(to);
        if self.signal_pending(to) {
            if let State::Blocked { .. } = self.procs[to].state {
                self.procs[to].set_state(State::Runnable);
            }
        }
    }

    /// The tasks of `t`'s group other than `t` that a group-wide signal
    /// action (stop, continue, discard) also applies to.
    pub fn group_peers(&self, t: usize) -> Vec<usize> {
        let tgid = self.procs[t].tgid;
        self.group(tgid).into_iter().filter(|&x| x != t).collect()
    }

    /// Drops pending `set` in every task of `t`'s group (a stop signal
    /// cancels SIGCONT and back, for the whole process).
    pub fn discard_group(&mut self, t: usize, set: SigSet) {
        let tgid = self.procs[t].tgid;
        for x in self.group(tgid) {
            self.procs[x].sig.discard(set);
        }
    }
}
