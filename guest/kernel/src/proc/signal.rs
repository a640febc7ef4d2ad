//! Signals as Linux has them on x86-64: dispositions (shared by processes
//! that share a handler table), a mask and a pending set per process
//! (the unit a thread will be), generation with Linux's rules (ignored
//! signals dropped at once, one instance of a standard signal pending,
//! real-time signals queued, SIGCONT and stop signals cancelling each
//! other), and the default actions. Delivery — running a handler or the
//! default action on the way back to user mode — is in `trap.rs`; the
//! frame a handler gets is in [`super::sigframe`].
//!
//! Numbers, flags and codes are Linux's (linux-raw-sys).

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::{Chan, Pid, ProcTable, State};
use linux_raw_sys::general as linux;
use vkernel_abi::frame::*;
use vkernel_abi::Errno;

pub const SIGQUIT: i32 = linux::SIGQUIT as i32;
pub const SIGILL: i32 = linux::SIGILL as i32;
pub const SIGTRAP: i32 = linux::SIGTRAP as i32;
pub const SIGABRT: i32 = linux::SIGABRT as i32;
pub const SIGBUS: i32 = linux::SIGBUS as i32;
pub const SIGFPE: i32 = linux::SIGFPE as i32;
pub const SIGKILL: i32 = linux::SIGKILL as i32;
pub const SIGSEGV: i32 = linux::SIGSEGV as i32;
pub const SIGPIPE: i32 = linux::SIGPIPE as i32;
pub const SIGALRM: i32 = linux::SIGALRM as i32;
pub const SIGVTALRM: i32 = linux::SIGVTALRM as i32;
pub const SIGPROF: i32 = linux::SIGPROF as i32;
pub const SIGCHLD: i32 = linux::SIGCHLD as i32;
pub const SIGCONT: i32 = linux::SIGCONT as i32;
pub const SIGSTOP: i32 = linux::SIGSTOP as i32;
pub const SIGTSTP: i32 = linux::SIGTSTP as i32;
pub const SIGTTIN: i32 = linux::SIGTTIN as i32;
pub const SIGTTOU: i32 = linux::SIGTTOU as i32;
pub const SIGSYS: i32 = linux::SIGSYS as i32;
/// Signals are 1..=NSIG.
pub const NSIG: i32 = 64;
/// The first real-time signal (queued, not merged).
pub const SIGRTMIN: i32 = 32;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// How many signals may wait in one process's queue (Linux's
/// RLIMIT_SIGPENDING is of this order for a small machine); a queued
/// real-time signal past it is `EAGAIN`.
pub const MAX_QUEUED: usize = 1024;

/// A set of signals: bit `sig - 1`, as Linux's `sigset_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);

    pub fn of(sig: i32) -> SigSet {
        SigSet(1 << (sig - 1))
    }

    pub fn has(self, sig: i32) -> bool {
        self.0 & SigSet::of(sig).0 != 0
    }

    pub fn add(&mut self, sig: i32) {
        self.0 |= SigSet::of(sig).0;
    }

    pub fn remove(&mut self, sig: i32) {
        self.0 &= !SigSet::of(sig).0;
    }

    /// The set without SIGKILL and SIGSTOP, which cannot be blocked.
    pub fn blockable(self) -> SigSet {
        SigSet(self.0 & !(SigSet::of(SIGKILL).0 | SigSet::of(SIGSTOP).0))
    }
}

/// Whether `sig` names a signal (1..=64).
pub fn valid(sig: i32) -> bool {
    (1..=NSIG).contains(&sig)
}

/// One disposition (Linux's `struct k_sigaction` as the system call
/// passes it: handler, flags, restorer, mask).
#[derive(Clone, Copy, Debug, Default)]
pub struct Action {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: SigSet,
}

impl Action {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag as u64 != 0
    }
}

/// The dispositions of every signal; shared (CLONE_SIGHAND) between the
/// processes that share handlers.
pub struct Actions(pub [Action; NSIG as usize]);

pub type ActionsRef = Rc<RefCell<Actions>>;

impl Actions {
    pub fn new_ref() -> ActionsRef {
        Rc::new(RefCell::new(Actions([Action::default(); NSIG as usize])))
    }

    pub fn get(&self, sig: i32) -> Action {
        self.0[(sig - 1) as usize]
    }

    pub fn set(&mut self, sig: i32, a: Action) {
        self.0[(sig - 1) as usize] = a;
    }

    /// execve: handled signals go back to their default; ignored ones stay
    /// ignored (POSIX), and the flags and masks of those stay too.
    pub fn reset_for_exec(&mut self) {
        for a in self.0.iter_mut() {
            if a.handler != SIG_IGN {
                *a = Action::default();
            }
        }
    }
}

/// What a signal does when its disposition is `SIG_DFL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate, a "core" signal (no core file is written).
    Core,
    Ignore,
    Stop,
    /// SIGCONT: its work is done when it is sent.
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        SIGCHLD => DefaultAction::Ignore,
        _ if sig == linux::SIGURG as i32 || sig == linux::SIGWINCH as i32 => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGSYS => {
            DefaultAction::Core
        }
        _ if sig == linux::SIGXCPU as i32 || sig == linux::SIGXFSZ as i32 => DefaultAction::Core,
        _ => DefaultAction::Terminate,
    }
}

/// Whether `sig` is a stop signal.
pub fn is_stop(sig: i32) -> bool {
    default_action(sig) == DefaultAction::Stop
}

/// Signals raised by the instruction the process ran (delivered before
/// others, as Linux's SYNCHRONOUS_MASK).
const SYNCHRONOUS: u64 = (1 << (SIGSEGV - 1))
    | (1 << (SIGBUS - 1))
    | (1 << (SIGILL - 1))
    | (1 << (SIGTRAP - 1))
    | (1 << (SIGFPE - 1))
    | (1 << (SIGSYS - 1));

/// The signal's name, for reports.
pub fn name(sig: i32) -> &'static str {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get(sig as usize).copied().unwrap_or("SIGRT")
}

/// Linux's `siginfo_t` (128 bytes): signo, errno, code, then a union whose
/// fields the constructors fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo(pub [u8; 128]);

pub const SI_USER: i32 = linux::SI_USER as i32;
pub const SI_KERNEL: i32 = linux::SI_KERNEL as i32;
pub const SI_TKILL: i32 = linux::SI_TKILL;
pub const SI_QUEUE: i32 = linux::SI_QUEUE;

impl SigInfo {
    pub fn new(sig: i32, code: i32) -> SigInfo {
        let mut i = SigInfo([0; 128]);
        i.put32(0, sig as u32);
        i.put32(8, code as u32);
        i
    }

    fn put32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn put64(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn get32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }

    pub fn signo(&self) -> i32 {
        self.get32(0) as i32
    }

    pub fn code(&self) -> i32 {
        self.get32(8) as i32
    }

    /// Sent by process `pid` (kill: SI_USER; tkill: SI_TKILL), uid 0.
    pub fn from_process(sig: i32, code: i32, pid: Pid) -> SigInfo {
        let mut i = SigInfo::new(sig, code);
        i.put32(16, pid);
        i
    }

    /// Raised by a fault at `addr` (SIGSEGV's SEGV_MAPERR/ACCERR, ...).
    pub fn fault(sig: i32, code: i32, addr: u64) -> SigInfo {
        let mut i = SigInfo::new(sig, code);
        i.put64(16, addr);
        i
    }

    /// SIGCHLD about child `pid`: `code` is CLD_*, `status` the exit code
    /// or the signal.
    pub fn child(code: u32, pid: Pid, status: i32) -> SigInfo {
        let mut i = SigInfo::new(SIGCHLD, code as i32);
        i.put32(16, pid);
        i.put32(24, status as u32);
        i
    }

    /// The sending process, for a signal a process sent.
    pub fn sender(&self) -> Pid {
        self.get32(16)
    }

    /// The fault address, for a fault signal.
    pub fn addr(&self) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.0[16..24]);
        u64::from_le_bytes(w)
    }
}

/// sigaltstack's stack.
#[derive(Clone, Copy, Debug, Default)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    /// 0, or SS_DISABLE (with SS_AUTODISARM kept alongside).
    pub flags: u32,
}

impl AltStack {
    pub fn disabled() -> AltStack {
        AltStack {
            flags: linux::SS_DISABLE,
            ..AltStack::default()
        }
    }

    /// Whether `sp` is on this stack (Linux's on_sig_stack).
    pub fn on(&self, sp: u64) -> bool {
        self.flags & linux::SS_DISABLE == 0 && sp > self.sp && sp.wrapping_sub(self.sp) <= self.size
    }
}

/// A process's signal state (the part a thread will own).
#[derive(Clone, Default)]
pub struct SigState {
    pub mask: SigSet,
    pub pending: SigSet,
    /// The siginfo of each pending signal, oldest first (one per standard
    /// signal, any number of real-time ones).
    pub queue: Vec<SigInfo>,
    /// The mask to restore after a call that ran under a temporary one
    /// (sigsuspend, ppoll, pselect6, epoll_pwait): restored when the call
    /// returns, or saved in the frame of the handler that interrupts it.
    pub saved_mask: Option<SigSet>,
    pub altstack: AltStack,
    /// rt_sigtimedwait's set while it sleeps: these wake it even blocked.
    pub waiting: SigSet,
    /// The pending signals that were sent to the process, not to this
    /// thread, while every thread blocked them: another thread that
    /// unblocks or waits for one takes it (Linux's shared pending set).
    pub shared: SigSet,
}

impl SigState {
    pub fn new() -> SigState {
        SigState {
            altstack: AltStack::disabled(),
            ..SigState::default()
        }
    }

    /// The pending signals the mask lets through.
    pub fn deliverable(&self) -> SigSet {
        SigSet(self.pending.0 & !self.mask.0)
    }

    /// Takes the first pending signal of `set`: synchronous ones first,
    /// then the lowest number, as Linux's next_signal.
    pub fn dequeue(&mut self, set: SigSet) -> Option<SigInfo> {
        let ready = self.pending.0 & set.0;
        if ready == 0 {
            return None;
        }
        let pick = if ready & SYNCHRONOUS != 0 {
            ready & SYNCHRONOUS
        } else {
            ready
        };
        let sig = pick.trailing_zeros() as i32 + 1;
        let at = self.queue.iter().position(|i| i.signo() == sig);
        let info = match at {
            Some(at) => self.queue.remove(at),
            None => SigInfo::new(sig, SI_KERNEL),
        };
        if !self.queue.iter().any(|i| i.signo() == sig) {
            self.pending.remove(sig);
        }
        Some(info)
    }

    /// Drops every pending instance of the signals in `set`.
    pub fn discard(&mut self, set: SigSet) {
        self.pending.0 &= !set.0;
        self.shared.0 &= !set.0;
        self.queue.retain(|i| !set.has(i.signo()));
    }

    /// Takes every pending instance of the signals in `set` out (for
    /// another thread of the process to hold).
    pub fn take(&mut self, set: SigSet) -> (SigSet, Vec<SigInfo>) {
        let got = SigSet(self.pending.0 & set.0);
        let mut infos = Vec::new();
        self.queue.retain(|i| {
            if got.has(i.signo()) {
                infos.push(*i);
                false
            } else {
                true
            }
        });
        self.pending.0 &= !got.0;
        self.shared.0 &= !got.0;
        (got, infos)
    }

    /// Adds what [`SigState::take`] took from another thread (a standard
    /// signal already pending here stays one).
    pub fn put(&mut self, got: SigSet, infos: Vec<SigInfo>) {
        for i in infos {
            let sig = i.signo();
            if sig < SIGRTMIN && self.pending.has(sig) {
                continue;
            }
            if self.queue.len() < MAX_QUEUED && self.queue.try_reserve(1).is_ok() {
                self.queue.push(i);
            }
        }
        self.pending.0 |= got.0;
        self.shared.0 |= got.0;
    }
}

/// ITIMER_REAL: SIGALRM at `deadline_ns` (host monotonic; 0: disarmed),
/// then every `interval_ns` (0: once).
#[derive(Clone, Copy, Debug, Default)]
pub struct RealTimer {
    pub deadline_ns: u64,
    pub interval_ns: u64,
}

/// How a wait4 should see a stopped or continued child (reported once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StopReport {
    #[default]
    None,
    /// Stopped by this signal (WUNTRACED).
    Stopped(i32),
    /// Continued by SIGCONT (WCONTINUED).
    Continued,
}

pub const SEGV_MAPERR: i32 = linux::SEGV_MAPERR as i32;
pub const SEGV_ACCERR: i32 = linux::SEGV_ACCERR as i32;

/// The signal (and code) a process trap raises, as Linux maps exceptions
/// (a page fault's code is refined by the caller, who knows the map).
pub fn for_trap(trap: u64, err: u64) -> (i32, i32) {
    match trap {
        // Present bit set: a protection fault on a mapped page.
        T_PAGEFLT if err & 1 != 0 => (SIGSEGV, SEGV_ACCERR),
        T_PAGEFLT => (SIGSEGV, SEGV_MAPERR),
        // #GP and friends: si_code SI_KERNEL, address 0, as Linux.
        T_PROTFLT => (SIGSEGV, SI_KERNEL),
        // #NP and #SS (a non-canonical rsp/rbp-based address): SIGBUS,
        // as Linux's exc_segment_not_present and exc_stack_segment.
        T_SEGNPFLT | T_STKFLT => (SIGBUS, SI_KERNEL),
        T_PRIVINFLT => (SIGILL, linux::ILL_ILLOPN as i32),
        T_DIVIDE => (SIGFPE, linux::FPE_INTDIV as i32),
        T_ARITHTRAP | T_XMMFLT => (SIGFPE, 0),
        T_OFLOW => (SIGSEGV, SI_KERNEL),
        T_BPTFLT => (SIGTRAP, SI_KERNEL),
        T_TRCTRAP => (SIGTRAP, linux::TRAP_TRACE as i32),
        T_ALIGNFLT => (SIGBUS, linux::BUS_ADRALN as i32),
        T_BOUND => (SIGSEGV, SI_KERNEL),
        _ => (SIGSEGV, SI_KERNEL),
    }
}

impl ProcTable {
    /// The disposition of `sig` in process `t`.
    pub fn action(&self, t: usize, sig: i32) -> Action {
        self.procs[t].actions.borrow().get(sig)
    }

    /// Whether `sig` would be ignored by `t` (and so is dropped when sent,
    /// unless blocked: a blocked signal waits, its handler may change).
    fn ignores(&self, t: usize, sig: i32) -> bool {
        let a = self.action(t, sig);
        a.handler == SIG_IGN
            || (a.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
    }

    /// Sends `info` to process `t`, as Linux's send_signal: SIGCONT and
    /// stop signals cancel each other (and SIGCONT continues a stopped
    /// process now); an ignored, unblocked signal is dropped; a standard
    /// signal already pending is merged; the process wakes if it can take
    /// the signal. `EAGAIN` when a real-time signal's queue is full.
    pub fn send(&mut self, t: usize, info: SigInfo) -> Result<(), Errno> {
        self.post(t, info, false)
    }

    /// [`ProcTable::send`]; `forced` for a fault's signal, which init
    /// cannot refuse.
    fn post(&mut self, t: usize, info: SigInfo, forced: bool) -> Result<(), Errno> {
        let sig = info.signo();
        if !self.procs[t].alive() || !valid(sig) {
            return Ok(());
        }
        if is_stop(sig) {
            self.discard_group(t, SigSet::of(SIGCONT));
        } else if sig == SIGCONT {
            self.discard_group(
                t,
                SigSet(
                    SigSet::of(SIGSTOP).0
                        | SigSet::of(SIGTSTP).0
                        | SigSet::of(SIGTTIN).0
                        | SigSet::of(SIGTTOU).0,
                ),
            );
            self.continue_stopped(t);
        }
        let p = &self.procs[t];
        // Init takes no default action for signals from other processes
        // (Linux's SIGNAL_UNKILLABLE in a pid namespace): only those it
        // handles reach it. Its own (kill of itself, SIGPIPE, SIGALRM) and
        // its faults act as they would on the host, since init is often
        // the user's own program (`vkernel run -- yes | head` ends 141).
        let from_process = matches!(info.code(), SI_USER | SI_QUEUE | SI_TKILL);
        let from_other = from_process && info.sender() != p.tgid;
        if p.tgid == 1 && self.action(t, sig).handler == SIG_DFL && from_other && !forced {
            return Ok(());
        }
        if !p.sig.mask.has(sig) && !p.sig.waiting.has(sig) && self.ignores(t, sig) {
            return Ok(());
        }
        let p = &mut self.procs[t];
        if sig < SIGRTMIN && p.sig.pending.has(sig) {
            return Ok(());
        }
        if p.sig.queue.len() >= MAX_QUEUED {
            if sig >= SIGRTMIN && info.code() <= 0 {
                return Err(Errno::EAGAIN);
            }
            // A kernel or standard signal still counts, without its info.
            p.sig.pending.add(sig);
        } else {
            p.sig.pending.add(sig);
            if p.sig.queue.try_reserve(1).is_ok() {
                p.sig.queue.push(info);
            }
        }
        self.signal_wake(t, sig);
        self.publish_signals(t);
        self.wakeup(Chan::SignalFd);
        Ok(())
    }

    /// Wakes `t` for a just-pending `sig` if it can act on it now: a
    /// sleep ends (its call restarts or is interrupted at delivery);
    /// SIGKILL ends a stop too.
    fn signal_wake(&mut self, t: usize, sig: i32) {
        let p = &mut self.procs[t];
        let takes = !p.sig.mask.has(sig) || p.sig.waiting.has(sig);
        match p.state {
            // A vfork parent waits for its child whatever comes, but SIGKILL.
            State::Blocked {
                chan: Chan::Vfork(_),
                ..
            } if sig != SIGKILL => {}
            State::Blocked { .. } if takes => p.set_state(State::Runnable),
            State::Stopped if sig == SIGKILL => p.set_state(State::Runnable),
            _ => {}
        }
    }

    /// A fault's signal: it cannot be blocked or ignored (Linux's
    /// force_sig_info resets such a disposition to the default).
    pub fn force(&mut self, t: usize, info: SigInfo) {
        let sig = info.signo();
        let blocked = self.procs[t].sig.mask.has(sig);
        let actions = self.procs[t].actions.clone();
        {
            let mut a = actions.borrow_mut();
            let mut act = a.get(sig);
            if act.handler == SIG_IGN || blocked {
                act.handler = SIG_DFL;
                a.set(sig, act);
            }
        }
        self.procs[t].sig.mask.remove(sig);
        // A second fault while the first is still pending is the same.
        self.procs[t].sig.pending.remove(sig);
        self.procs[t].sig.queue.retain(|i| i.signo() != sig);
        let _ = self.post(t, info, true);
    }

    /// Refreshes what `/proc/PID/status` shows of `s`'s signals.
    pub fn publish_signals(&self, s: usize) {
        let p = &self.procs[s];
        let Some(t) = &p.task else {
            return;
        };
        let (mut ignored, mut caught) = (0u64, 0u64);
        for (i, a) in p.actions.borrow().0.iter().enumerate() {
            match a.handler {
                SIG_DFL => {}
                SIG_IGN => ignored |= 1 << i,
                _ => caught |= 1 << i,
            }
        }
        let shared = p.sig.shared.0;
        t.signals.set([
            p.sig.pending.0 & !shared,
            shared,
            p.sig.mask.0,
            ignored,
            caught,
        ]);
    }

    /// Whether process `s` has a signal to act on before it runs.
    pub fn signal_pending(&self, s: usize) -> bool {
        self.procs[s].sig.deliverable() != SigSet::EMPTY
    }

    /// The processes a kill(2) `pid` names, as Linux: `pid` > 0 that
    /// process; 0 the caller's process group; -1 every process but init
    /// and the caller; < -1 the process group `-pid`.
    /// One task per process: the one named, or each group's leader (the
    /// caller sends to the group, see [`ProcTable::send_group`]).
    pub fn kill_targets(&self, caller: usize, pid: i32) -> Vec<usize> {
        let me = self.procs[caller].tgid;
        let pgrp = self.procs[caller].pgid;
        self.procs
            .iter()
            .enumerate()
            // Zombies count (the call succeeds; they take nothing).
            .filter(|(_, p)| p.state != State::Free)
            .filter(|(_, p)| pid > 0 || p.pid == p.tgid)
            .filter(|(_, p)| match pid {
                0 => p.pgid == pgrp,
                -1 => p.tgid != 1 && p.tgid != me,
                _ if pid < -1 => p.pgid == pid.unsigned_abs(),
                _ => p.pid == pid as u32,
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Stops process `s` by `sig` (its default action): it leaves the
    /// run queue, keeping a system call it was in to restart when
    /// continued, and its parent hears of it (SIGCHLD unless the parent
    /// asked SA_NOCLDSTOP; a waiting wait4 with WUNTRACED).
    /// Every task of the process stops (a group stop); the leader holds
    /// the report.
    pub fn stop(&mut self, s: usize, sig: i32) {
        for t in self.group_peers(s) {
            // A vfork parent's wait is not a call to restart: it keeps
            // waiting for its child (and stays so until SIGKILL).
            let vfork = matches!(
                self.procs[t].state,
                State::Blocked {
                    chan: Chan::Vfork(_),
                    ..
                }
            );
            if self.procs[t].alive() && !vfork {
                self.procs[t].set_state(State::Stopped);
            }
        }
        self.procs[s].set_state(State::Stopped);
        let (tgid, parent) = (self.procs[s].tgid, self.procs[s].parent);
        if let Some(l) = self.find(tgid) {
            self.procs[l].stop_report = StopReport::Stopped(sig);
        }
        self.notify_parent_stop(parent, SigInfo::child(linux::CLD_STOPPED, tgid, sig));
    }

    /// SIGCONT for process `t`: a stopped one runs again (a system call it
    /// was in restarts) and its parent hears of it.
    fn continue_stopped(&mut self, t: usize) {
        let tgid = self.procs[t].tgid;
        let mut any = false;
        for x in self.group(tgid) {
            if self.procs[x].state == State::Stopped {
                self.procs[x].set_state(State::Runnable);
                any = true;
            }
        }
        if !any {
            return;
        }
        let parent = self.procs[t].parent;
        if let Some(l) = self.find(tgid) {
            self.procs[l].stop_report = StopReport::Continued;
        }
        self.notify_parent_stop(parent, SigInfo::child(linux::CLD_CONTINUED, tgid, SIGCONT));
    }

    fn notify_parent_stop(&mut self, parent: Pid, info: SigInfo) {
        if let Some(ps) = self.find(parent) {
            if !self.action(ps, SIGCHLD).has(linux::SA_NOCLDSTOP) {
                let _ = self.send_group(ps, info);
            }
        }
        self.wakeup(Chan::Child(parent));
    }

    /// Whether the parent of a dying child has asked not to see it
    /// (SIGCHLD ignored, or SA_NOCLDWAIT): then the child is reaped at
    /// once instead of becoming a zombie, as Linux does.
    pub fn parent_reaps_nothing(&self, parent: usize) -> bool {
        let a = self.action(parent, SIGCHLD);
        a.handler == SIG_IGN || a.has(linux::SA_NOCLDWAIT)
    }
}
