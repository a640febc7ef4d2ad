//! A gdb remote stub (`vkernel run --gdb ADDR`), built on the `gdbstub`
//! crate's state machine so the run loop stays ours.
//!
//! On these machines guest ring 0 is emulated and everything the debugger
//! cares about runs in ring 3, where KVM_SET_GUEST_DEBUG does nothing
//! (KVM-NOTES). So breakpoints are `int3` bytes written into guest memory
//! (#BP) and single step is RFLAGS.TF (#DB), both arriving through the
//! host's IDT stubs like any exception. The same works on hardware KVM.
//!
//! Which context the debugger sees is whatever is on the vCPU: the guest
//! kernel, or the process `vmspace_ctl(RUN)` entered. Memory goes through
//! that context's page tables.
//!
//! Breakpoints come in two kinds, by address:
//! - inside the guest kernel's text (its ELF's executable segments): written
//!   into the kernel's memory at once, through the kernel's page tables;
//! - anywhere else: a *process* breakpoint, written into each process while
//!   it is on the vCPU (armed when RUN enters it, lifted when it traps back
//!   to the kernel), so the guest kernel never sees the `int3` and pages it
//!   reads with pread stay clean.
//!
//! The stub is the run loop's [`RunHooks`]; it reaches the vCPU only
//! through [`VcpuAccess`]. While the guest is stopped, gdbstub talks to a
//! [`Target`] that holds a snapshot of the vCPU's registers (taken at the
//! stop, written back when the guest resumes) and the guest's memory.
//!
//! The debugger's traps are told from the guest's own: an `int3` at an
//! address where no debugger breakpoint is planted, or a #DB when the
//! debugger did not ask for a step (or the guest had TF set itself), takes
//! the guest's usual path (T_BPTFLT / T_TRCTRAP to the guest kernel, or a
//! kernel crash report).

mod memory;
mod target;
mod watcher;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::os::fd::AsRawFd;

use gdbstub::common::Signal;
use gdbstub::conn::Connection;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use vkernel_abi::frame::T_FAST_SYSCALL;
use vkernel_abi::{rflags, TrapFrame};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::hooks::{RunHooks, VcpuAccess};
use crate::machine::Stop;
use watcher::{Watch, Watcher};

pub use memory::{read_virt, translate, write_virt};

const INT3: u8 = 0xcc;

type StopReason = SingleThreadStopReason<u64>;
type StateMachine = GdbStubStateMachine<'static, Target, Conn>;

/// The client connection: a TCP stream with an output buffer, flushed per
/// packet (gdbstub writes a byte at a time).
pub struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
}

impl Connection for Conn {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.out.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.out.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        let r = Write::write_all(&mut self.stream, &self.out);
        self.out.clear();
        r?;
        Write::flush(&mut self.stream)
    }

    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        self.stream.set_nodelay(true)
    }
}

/// Packet framing in front of gdbstub, which ends the session on any byte
/// it cannot parse: bytes outside a packet other than `+`, `-` and Ctrl-C
/// are dropped, and a packet whose checksum is wrong is refused with `-`
/// (the client sends it again), as the protocol asks.
#[derive(Default)]
struct Framer {
    /// The packet being received, from its `$`; empty between packets.
    packet: Vec<u8>,
}

/// What one byte from the client amounts to.
enum Framed {
    /// Nothing yet.
    More,
    /// Bytes for gdbstub: an ack, a Ctrl-C, or a whole good packet.
    Pass(Vec<u8>),
    /// A packet with a bad checksum: answer `-`.
    Nak,
}

impl Framer {
    fn push(&mut self, b: u8) -> Framed {
        if self.packet.is_empty() {
            return match b {
                b'$' => {
                    self.packet.push(b);
                    Framed::More
                }
                b'+' | b'-' | 0x03 => Framed::Pass(vec![b]),
                _ => {
                    log::debug!("gdb: dropped stray byte {b:#04x}");
                    Framed::More
                }
            };
        }
        self.packet.push(b);
        if self.packet.len() > 64 * 1024 {
            log::warn!("gdb: dropped an over-long packet");
            self.packet.clear();
            return Framed::Nak;
        }
        let n = self.packet.len();
        if n < 4 || self.packet[n - 3] != b'#' {
            return Framed::More;
        }
        let p = std::mem::take(&mut self.packet);
        let sum = p[1..n - 3].iter().fold(0u8, |a, &c| a.wrapping_add(c));
        let given = std::str::from_utf8(&p[n - 2..])
            .ok()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if given == Some(sum) {
            Framed::Pass(p)
        } else {
            log::warn!("gdb: refused a packet with a bad checksum");
            Framed::Nak
        }
    }
}

/// Feeds framed bytes to the state machine.
fn pump(t: &mut Target, mut sm: StateMachine, bytes: &[u8]) -> Result<StateMachine, String> {
    for &b in bytes {
        sm = match sm {
            GdbStubStateMachine::Idle(s) => s.incoming_data(t, b),
            GdbStubStateMachine::Running(s) => s.incoming_data(t, b),
            other => return Ok(other),
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(sm)
}

/// Takes one byte from the client through the framer into the session.
fn take_byte(
    framer: &mut Framer,
    t: &mut Target,
    mut sm: StateMachine,
    b: u8,
) -> Result<StateMachine, String> {
    match framer.push(b) {
        Framed::More => Ok(sm),
        Framed::Pass(bytes) => pump(t, sm, &bytes),
        Framed::Nak => {
            if let Some(c) = conn(&mut sm) {
                c.out.push(b'-');
                let _ = c.flush();
            }
            Ok(sm)
        }
    }
}

fn conn(sm: &mut StateMachine) -> Option<&mut Conn> {
    Some(match sm {
        GdbStubStateMachine::Idle(s) => s.borrow_conn(),
        GdbStubStateMachine::Running(s) => s.borrow_conn(),
        GdbStubStateMachine::CtrlCInterrupt(s) => s.borrow_conn(),
        GdbStubStateMachine::Disconnected(s) => s.borrow_conn(),
    })
}

/// Resuming as the client asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    Continue,
    Step,
}

/// The instruction a single step runs, where it matters for TF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepInsn {
    /// `pushf`: the pushed copy of RFLAGS must not show the debugger's TF.
    Pushf,
    /// `popf` / `iretq`: RFLAGS afterwards is what the guest chose.
    Popf,
    Other,
}

/// A single step in progress.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// The guest had TF set itself: the #DB is (also) the guest's.
    guest_tf: bool,
    insn: StepInsn,
}

/// An `int3` written into guest memory over `orig`.
#[derive(Clone, Copy, Debug)]
struct Planted {
    gpa: u64,
    orig: u8,
}

fn plant(mem: &GuestMemoryMmap, cr3: u64, va: u64) -> Option<Planted> {
    let t = translate(mem, cr3, va)?;
    let orig: u8 = mem.read_obj(GuestAddress(t.gpa)).ok()?;
    mem.write_obj(INT3, GuestAddress(t.gpa)).ok()?;
    Some(Planted { gpa: t.gpa, orig })
}

fn lift(mem: &GuestMemoryMmap, p: &Planted) {
    if mem.read_obj::<u8>(GuestAddress(p.gpa)).ok() == Some(INT3) {
        let _ = mem.write_obj(p.orig, GuestAddress(p.gpa));
    }
}

/// The debugger's breakpoints.
#[derive(Default)]
struct Breakpoints {
    /// In the kernel's text, planted while set.
    kernel: BTreeMap<u64, Planted>,
    /// Wanted in every process.
    process: BTreeSet<u64>,
    /// Planted in the process on the vCPU now.
    armed: BTreeMap<u64, Planted>,
}

impl Breakpoints {
    fn planted(&self) -> impl Iterator<Item = (&u64, &Planted)> {
        self.kernel.iter().chain(self.armed.iter())
    }
}

/// The vCPU as the client sees it while the guest is stopped: taken from
/// the vCPU when it stops, written back (if the client changed it) when
/// it resumes.
#[derive(Default)]
struct Snapshot {
    regs: kvm_regs,
    sregs: kvm_sregs,
    fpu: Option<kvm_fpu>,
    /// Whether a process (not the kernel) is on the vCPU.
    in_process: bool,
    /// The registers were changed: write them back before resuming.
    dirty: bool,
}

/// What gdbstub drives (`target.rs`): the debugger's breakpoints and step
/// state, the guest's memory and the stopped vCPU's registers.
pub(crate) struct Target {
    /// All guest memory (set when the run starts).
    mem: GuestMemoryMmap,
    /// Root of the guest kernel's address space.
    kernel_cr3: u64,
    cpu: Snapshot,
    bps: Breakpoints,
    resume: Option<Resume>,
    step: Option<Step>,
    /// A step ended by a context switch (a trap back to the kernel, a
    /// hypercall): report it after this exit.
    step_done: bool,
    /// The signal a guest-kernel crash was reported with.
    crash_signal: Option<Signal>,
    kernel_text: Vec<Range<u64>>,
    /// Ring-3 code and stack segments (the same for kernel and processes).
    user_cs: kvm_segment,
    user_ss: kvm_segment,
}

impl Target {
    fn in_kernel_text(&self, va: u64) -> bool {
        self.kernel_text.iter().any(|r| r.contains(&va))
    }

    /// Takes the vCPU's state as the guest stops.
    fn capture(&mut self, cpu: &dyn VcpuAccess) {
        let (regs, sregs) = cpu.context();
        self.cpu = Snapshot {
            regs,
            sregs,
            fpu: cpu.fpu(),
            in_process: cpu.in_process(),
            dirty: false,
        };
    }

    /// Gives the vCPU the registers the client changed.
    fn write_back(&mut self, cpu: &mut dyn VcpuAccess) {
        if std::mem::take(&mut self.cpu.dirty) {
            cpu.set_context(&self.cpu.regs, &self.cpu.sregs);
        }
    }

    /// Lifts every planted breakpoint and forgets them all.
    fn forget_breakpoints(&mut self) {
        for p in self.bps.planted().map(|(_, p)| *p).collect::<Vec<_>>() {
            lift(&self.mem, &p);
        }
        self.bps = Breakpoints::default();
    }
}

/// The debugger: listener, client session and the [`Target`].
pub struct Gdb {
    listener: TcpListener,
    addr: String,
    sm: Option<StateMachine>,
    framer: Framer,
    watcher: Watcher,
    /// The guest has run since the first connection.
    started: bool,
    target: Target,
}

impl Gdb {
    /// Waits on `listener` (its address said on stderr) for a client to debug the guest
    /// whose kernel ELF is `kernel_elf`. Call on the vCPU thread. The
    /// watcher thread filters its system calls unless `seccomp` is false.
    pub fn listen(listener: TcpListener, kernel_elf: &[u8], seccomp: bool) -> std::io::Result<Gdb> {
        let local = listener.local_addr()?;
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let watcher = Watcher::start(me, crate::slice_timer::signal(), seccomp)?;
        crate::report!("vkernel: waiting for gdb on {local}");
        Ok(Gdb {
            listener,
            addr: local.to_string(),
            sm: None,
            framer: Framer::default(),
            watcher,
            started: false,
            target: Target {
                mem: GuestMemoryMmap::default(),
                kernel_cr3: 0,
                cpu: Snapshot::default(),
                bps: Breakpoints::default(),
                resume: None,
                step: None,
                step_done: false,
                crash_signal: None,
                kernel_text: executable_segments(kernel_elf),
                user_cs: kvm_segment::default(),
                user_ss: kvm_segment::default(),
            },
        })
    }

    /// Whether the watcher has something for the run loop.
    pub fn attention(&self) -> bool {
        self.watcher.attention()
    }

    fn new_session(&mut self, stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        let _ = stream.set_nonblocking(false);
        let conn = Conn {
            stream,
            out: Vec::new(),
        };
        match GdbStub::new(conn).run_state_machine(&mut self.target) {
            Ok(sm) => {
                log::info!("gdb: client {peer} connected");
                crate::report!("vkernel: gdb connected from {peer}");
                self.sm = Some(sm);
                self.framer = Framer::default();
            }
            Err(e) => log::warn!("gdb: cannot start a session with {peer}: {e}"),
        }
    }

    /// Serves the client while the guest is stopped (reporting `reason`
    /// first if the client is waiting for a stop), on a snapshot of the
    /// vCPU; returns when it resumes the guest (Ok), or
    /// `Err(Stop::Killed)` when the client killed it.
    fn serve(&mut self, cpu: &mut dyn VcpuAccess, reason: Option<StopReason>) -> Result<(), Stop> {
        self.target.capture(cpu);
        let r = self.serve_stopped(reason);
        self.target.write_back(cpu);
        r
    }

    fn serve_stopped(&mut self, mut reason: Option<StopReason>) -> Result<(), Stop> {
        self.watcher.set(Watch::Nothing);
        loop {
            let sm = match self.sm.take() {
                Some(sm) => sm,
                None => {
                    if self.started {
                        // No client: the guest runs on.
                        self.watch_running();
                        return Ok(());
                    }
                    // Before the first resume, wait for the next client.
                    match self.listener.accept() {
                        Ok((stream, _)) => self.new_session(stream),
                        Err(e) => {
                            log::warn!("gdb: accept failed: {e}");
                            std::thread::sleep(std::time::Duration::from_millis(100));
                        }
                    }
                    continue;
                }
            };
            let next = match sm {
                GdbStubStateMachine::Running(s) => match reason.take() {
                    Some(r) => s
                        .report_stop(&mut self.target, r)
                        .map_err(|e| e.to_string()),
                    None => {
                        self.sm = Some(GdbStubStateMachine::Running(s));
                        self.apply_resume();
                        return Ok(());
                    }
                },
                GdbStubStateMachine::Idle(mut s) => {
                    let mut b = [0u8; 1];
                    let stream = &mut s.borrow_conn().stream;
                    let _ = stream.set_nonblocking(false);
                    match stream.read(&mut b) {
                        Ok(1) => take_byte(
                            &mut self.framer,
                            &mut self.target,
                            GdbStubStateMachine::Idle(s),
                            b[0],
                        ),
                        Ok(_) => {
                            self.lost("the client closed the connection");
                            continue;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {
                            self.sm = Some(GdbStubStateMachine::Idle(s));
                            continue;
                        }
                        Err(e) => {
                            self.lost(&format!("reading from the client: {e}"));
                            continue;
                        }
                    }
                }
                GdbStubStateMachine::CtrlCInterrupt(s) => s
                    .interrupt_handled(&mut self.target, Some(StopReason::Signal(Signal::SIGINT)))
                    .map_err(|e| e.to_string()),
                GdbStubStateMachine::Disconnected(mut s) => match s.get_reason() {
                    DisconnectReason::Kill => {
                        // gdb waits for an answer to `vKill` (gdbstub gives
                        // none outside extended mode); `k` expects none.
                        let c = s.borrow_conn();
                        c.out.extend_from_slice(b"$OK#9a");
                        let _ = c.flush();
                        self.forget_client();
                        crate::report!("vkernel: gdb killed the guest");
                        return Err(Stop::Killed);
                    }
                    DisconnectReason::Disconnect => {
                        // Detach: the guest runs on, even before its first
                        // instruction.
                        self.started = true;
                        self.lost("the client detached");
                        continue;
                    }
                    why => {
                        self.lost(&format!("the session ended ({why:?})"));
                        continue;
                    }
                },
            };
            match next {
                Ok(sm) => self.sm = Some(sm),
                Err(e) => self.lost(&format!("protocol error: {e}")),
            }
        }
    }

    /// The client is gone: lift every breakpoint, forget the step; the guest
    /// goes on running (or, before it ever ran, waits for the next client).
    fn lost(&mut self, why: &str) {
        log::warn!("gdb: {why}; the guest keeps running");
        crate::report!("vkernel: gdb session ended: {why}; the guest keeps running");
        self.forget_client();
    }

    fn forget_client(&mut self) {
        self.sm = None;
        let t = &mut self.target;
        t.resume = None;
        t.step = None;
        t.step_done = false;
        t.forget_breakpoints();
    }

    fn watch_running(&mut self) {
        let w = match &mut self.sm {
            Some(GdbStubStateMachine::Running(s)) => {
                Watch::Client(s.borrow_conn().stream.as_raw_fd())
            }
            _ => Watch::Listener(self.listener.as_raw_fd()),
        };
        self.watcher.set(w);
    }

    /// The client resumed the guest: set up the step (in the snapshot,
    /// written back by `serve`), watch the socket.
    fn apply_resume(&mut self) {
        self.started = true;
        let t = &mut self.target;
        let action = t.resume.take().unwrap_or(Resume::Continue);
        t.step = None;
        t.step_done = false;
        if action == Resume::Step {
            let (regs, cr3) = (&mut t.cpu.regs, t.cpu.sregs.cr3);
            let mut code = [0u8; 16];
            let n = read_virt(&t.mem, cr3, regs.rip, &mut code);
            t.step = Some(Step {
                guest_tf: regs.rflags & rflags::TF != 0,
                insn: classify(&code[..n]),
            });
            regs.rflags |= rflags::TF;
            t.cpu.dirty = true;
        }
        self.watch_running();
    }

    /// The watcher saw data from the client or a new client.
    fn attend(&mut self, cpu: &mut dyn VcpuAccess) -> Result<(), Stop> {
        self.target.capture(cpu);
        let r = self.attend_inner(cpu);
        self.target.write_back(cpu);
        if r.is_ok() {
            self.watch_running(); // the client, or (it left) the listener
        }
        r
    }

    fn attend_inner(&mut self, cpu: &mut dyn VcpuAccess) -> Result<(), Stop> {
        self.watcher.set(Watch::Nothing);
        let Some(mut sm) = self.sm.take() else {
            let _ = self.listener.set_nonblocking(true);
            let accepted = self.listener.accept();
            let _ = self.listener.set_nonblocking(false);
            return match accepted {
                Ok((stream, _)) => {
                    self.new_session(stream);
                    // A new client finds the guest stopped where it is.
                    self.serve(cpu, None)
                }
                Err(_) => Ok(()),
            };
        };
        loop {
            let GdbStubStateMachine::Running(mut s) = sm else {
                self.sm = Some(sm);
                return self.serve(cpu, None);
            };
            let mut b = [0u8; 1];
            let stream = &mut s.borrow_conn().stream;
            let _ = stream.set_nonblocking(true);
            let r = stream.read(&mut b);
            let _ = stream.set_nonblocking(false);
            sm = match r {
                Ok(1) => match take_byte(
                    &mut self.framer,
                    &mut self.target,
                    GdbStubStateMachine::Running(s),
                    b[0],
                ) {
                    Ok(next) => next,
                    Err(e) => {
                        self.lost(&format!("protocol error: {e}"));
                        return Ok(());
                    }
                },
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted =>
                {
                    self.sm = Some(GdbStubStateMachine::Running(s));
                    return Ok(());
                }
                Ok(_) => {
                    self.lost("the client closed the connection");
                    return Ok(());
                }
                Err(e) => {
                    self.lost(&format!("reading from the client: {e}"));
                    return Ok(());
                }
            };
        }
    }

    /// Plants every process breakpoint not yet planted in the process on
    /// the vCPU (pages not mapped yet are tried again after each resolved
    /// fault).
    fn arm_process(&mut self, cpu: &dyn VcpuAccess) {
        let bps = &mut self.target.bps;
        if bps.armed.len() == bps.process.len() {
            return;
        }
        let cr3 = cpu.context().1.cr3;
        let mem = cpu.memory();
        for &va in &bps.process {
            if bps.armed.contains_key(&va) {
                continue;
            }
            match plant(mem, cr3, va) {
                Some(p) => {
                    log::debug!("gdb: planted {va:#x} (gpa {:#x}) in cr3 {cr3:#x}", p.gpa);
                    bps.armed.insert(va, p);
                }
                None => log::debug!("gdb: {va:#x} not mapped in cr3 {cr3:#x} yet"),
            }
        }
    }
}

/// The executable PT_LOAD ranges of the guest kernel's ELF (none if it is
/// not an x86-64 ELF64 with a readable program header table).
fn executable_segments(elf: &[u8]) -> Vec<Range<u64>> {
    use ::elf::abi::{PF_X, PT_LOAD};
    let Ok(phdrs) =
        vkernel_abi::elf::header(elf).and_then(|h| vkernel_abi::elf::program_headers(elf, &h))
    else {
        return Vec::new();
    };
    phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_flags & PF_X != 0)
        .map(|p| p.p_vaddr..p.p_vaddr.saturating_add(p.p_memsz))
        .collect()
}

/// Sorts the instruction at the start of `code` (after legacy and REX
/// prefixes).
fn classify(code: &[u8]) -> StepInsn {
    let op = code.iter().copied().find(|b| {
        !matches!(
            b,
            0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0x40
                ..=0x4f
        )
    });
    match op {
        Some(0x9c) => StepInsn::Pushf,
        Some(0x9d) | Some(0xcf) => StepInsn::Popf,
        _ => StepInsn::Other,
    }
}

impl RunHooks for Gdb {
    /// Before the first instruction: wait for a client and serve it until
    /// it resumes the guest; `Err` if it killed the guest.
    fn start(&mut self, cpu: &mut dyn VcpuAccess) -> Result<(), Stop> {
        let (regs, sregs) = cpu.initial_context()?;
        let t = &mut self.target;
        t.user_cs = sregs.cs;
        t.user_ss = sregs.ss;
        t.mem = cpu.memory().clone();
        t.kernel_cr3 = cpu.kernel_cr3();
        cpu.set_context(&regs, &sregs);
        self.serve(cpu, None)
    }

    /// Report a finished step, or serve what the watcher saw. Cheap when
    /// nothing is up.
    fn after_exit(&mut self, cpu: &mut dyn VcpuAccess) -> Result<(), Stop> {
        if !self.target.step_done && !self.attention() {
            return Ok(());
        }
        // Never stop between an exception's delivery and its stub's `out`.
        if cpu.context().1.cs.selector & 3 == 0 {
            return Ok(());
        }
        if self.target.step_done {
            self.target.step_done = false;
            self.target.step = None;
            return self.serve(cpu, Some(StopReason::DoneStep));
        }
        self.attend(cpu)
    }

    /// The watcher kicks the vCPU with the slice timer's signal.
    fn kicks_vcpu(&self) -> bool {
        true
    }

    /// A step that ran the hypercall's `out` is done: put RIP past the
    /// `out` if the kernel is still on the vCPU, and keep the debugger's
    /// TF out of the kernel's saved context.
    fn hypercall_done(&mut self, cpu: &mut dyn VcpuAccess) {
        let Some(step) = self.target.step else {
            return;
        };
        let strip = |fl: u64| {
            if step.guest_tf {
                fl
            } else {
                fl & !rflags::TF
            }
        };
        if let Some(fl) = cpu.saved_kernel_rflags() {
            *fl = strip(*fl);
        } else {
            let (mut regs, sregs) = cpu.context();
            let mut op = [0u8; 1];
            if read_virt(cpu.memory(), sregs.cr3, regs.rip, &mut op) == 1 && op[0] == 0xef {
                regs.rip += 1;
            }
            regs.rflags = strip(regs.rflags);
            cpu.set_context(&regs, &sregs);
        }
        self.target.step_done = true;
    }

    /// Plant the process breakpoints in the process RUN entered.
    fn entered_process(&mut self, cpu: &mut dyn VcpuAccess) {
        if self.target.bps.process.is_empty() {
            return;
        }
        self.arm_process(cpu);
    }

    /// Breakpoints on the page that just appeared.
    fn fault_resolved(&mut self, cpu: &mut dyn VcpuAccess) {
        self.arm_process(cpu);
    }

    /// Lift the process's breakpoints, and keep the debugger's TF out of
    /// the frame (the step is then over: it is reported with the kernel
    /// back on the vCPU).
    fn leaving_process(&mut self, cpu: &mut dyn VcpuAccess, tf: &mut TrapFrame) {
        let t = &mut self.target;
        for (_, p) in std::mem::take(&mut t.bps.armed) {
            lift(cpu.memory(), &p);
        }
        if let Some(step) = t.step {
            if !step.guest_tf {
                tf.rflags &= !rflags::TF;
                if tf.trapno == T_FAST_SYSCALL {
                    tf.r11 &= !rflags::TF; // `syscall` saved RFLAGS there
                }
            }
            t.step_done = true;
        }
    }

    /// #BP or #DB: a debugger breakpoint or step stops here; anything else
    /// is the guest's own and takes its usual path (`None`), with nothing
    /// changed.
    fn debug_trap(
        &mut self,
        cpu: &mut dyn VcpuAccess,
        vector: u8,
        mut regs: kvm_regs,
        sregs: kvm_sregs,
    ) -> Option<Result<(), Stop>> {
        let in_process = cpu.in_process();
        let t = &mut self.target;
        let mut sregs = sregs;
        sregs.cs = t.user_cs;
        sregs.ss = t.user_ss;
        let reason = match vector {
            3 => {
                let at = regs.rip.wrapping_sub(1);
                let ours = if in_process {
                    t.bps.armed.contains_key(&at)
                } else {
                    t.bps.kernel.contains_key(&at)
                };
                if !ours {
                    return None;
                }
                regs.rip = at;
                // A step that ran into a breakpoint is over too.
                if let Some(step) = t.step.take() {
                    if !step.guest_tf {
                        regs.rflags &= !rflags::TF;
                    }
                }
                StopReason::SwBreak(())
            }
            1 => {
                let step = t.step?;
                if step.guest_tf {
                    return None; // the guest's own trace trap: it gets it
                }
                t.step = None;
                if step.insn != StepInsn::Popf {
                    regs.rflags &= !rflags::TF;
                }
                if step.insn == StepInsn::Pushf {
                    let mut word = [0u8; 8];
                    let mem = cpu.memory();
                    if read_virt(mem, sregs.cr3, regs.rsp, &mut word) == 8 {
                        let v = u64::from_le_bytes(word) & !rflags::TF;
                        write_virt(mem, sregs.cr3, regs.rsp, &v.to_le_bytes());
                    }
                }
                StopReason::DoneStep
            }
            _ => return None,
        };
        cpu.set_context(&regs, &sregs);
        Some(self.serve(cpu, Some(reason)))
    }

    /// Stop at the crash with the matching signal so the client can look
    /// at it (registers as at the faulting instruction); whatever it does
    /// next, the run then ends.
    fn crashed(&mut self, cpu: &mut dyn VcpuAccess, vector: u8, regs: kvm_regs, sregs: kvm_sregs) {
        let sig = match vector {
            0 | 16 | 19 => Signal::SIGFPE,
            1 | 3 => Signal::SIGTRAP,
            6 => Signal::SIGILL,
            17 => Signal::SIGBUS,
            _ => Signal::SIGSEGV,
        };
        let t = &mut self.target;
        t.crash_signal = Some(sig);
        t.step = None;
        let mut sregs = sregs;
        sregs.cs = t.user_cs;
        sregs.ss = t.user_ss;
        cpu.set_context(&regs, &sregs);
        if matches!(self.sm, Some(GdbStubStateMachine::Running(_))) {
            let _ = self.serve(cpu, Some(StopReason::Signal(sig)));
        }
    }

    /// Tell the client the guest exited (W packet).
    fn exited(&mut self, cpu: &mut dyn VcpuAccess, status: i32) {
        self.watcher.set(Watch::Nothing);
        if let Some(GdbStubStateMachine::Running(s)) = self.sm.take() {
            self.target.capture(cpu);
            match s.report_stop(&mut self.target, StopReason::Exited((status & 0xff) as u8)) {
                Ok(_) => log::info!("gdb: reported the guest's exit ({status})"),
                Err(e) => log::warn!("gdb: reporting the guest's exit: {e}"),
            }
        }
        self.forget_client();
    }

    /// Tell the client the guest was terminated.
    fn terminated(&mut self, cpu: &mut dyn VcpuAccess) {
        self.watcher.set(Watch::Nothing);
        let sig = self.target.crash_signal.unwrap_or(Signal::SIGKILL);
        if let Some(GdbStubStateMachine::Running(s)) = self.sm.take() {
            self.target.capture(cpu);
            let _ = s.report_stop(&mut self.target, StopReason::Terminated(sig));
        }
        self.forget_client();
    }
}

impl Drop for Gdb {
    fn drop(&mut self) {
        log::debug!("gdb: stub on {} closed", self.addr);
    }
}

/// Refuses (`Error::GdbRemote`) a `--gdb` address any of whose resolved
/// addresses is not loopback (`0.0.0.0`, a LAN address): the remote
/// protocol has no authentication. An address that does not resolve is
/// left to `listen`, which reports why.
pub fn check_loopback(addr: &str) -> Result<(), crate::Error> {
    use std::net::ToSocketAddrs;
    let Ok(resolved) = addr.to_socket_addrs() else {
        return Ok(());
    };
    for a in resolved {
        if !a.ip().is_loopback() {
            return Err(crate::Error::GdbRemote {
                addr: addr.to_string(),
                resolved: a,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_finds_pushf_popf_and_iret_behind_prefixes() {
        assert_eq!(classify(&[0x9c]), StepInsn::Pushf);
        assert_eq!(classify(&[0x66, 0x9c]), StepInsn::Pushf);
        assert_eq!(classify(&[0x9d]), StepInsn::Popf);
        assert_eq!(classify(&[0x48, 0xcf]), StepInsn::Popf);
        assert_eq!(classify(&[0x48, 0x89, 0xf8]), StepInsn::Other);
        assert_eq!(classify(&[]), StepInsn::Other);
    }

    fn frame(f: &mut Framer, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            match f.push(b) {
                Framed::More => {}
                Framed::Pass(p) => out.push(String::from_utf8_lossy(&p).into_owned()),
                Framed::Nak => out.push("NAK".into()),
            }
        }
        out
    }

    #[test]
    fn framer_passes_good_packets_and_controls_drops_junk_and_naks_bad_sums() {
        let mut f = Framer::default();
        assert_eq!(
            frame(&mut f, b"junk+$g#67\x03$g#00-$m0,8#01"),
            ["+", "$g#67", "\x03", "NAK", "-", "$m0,8#01"]
        );
        assert_eq!(frame(&mut f, b"$?#3"), Vec::<String>::new());
        assert_eq!(frame(&mut f, b"f"), ["$?#3f"]);
    }

    #[test]
    fn executable_segments_of_the_built_kernel() {
        let elf = crate::images::KERNEL;
        let text = executable_segments(elf);
        assert!(!text.is_empty());
        assert!(text.iter().any(|r| r.contains(&0x20_0000)), "{text:x?}");
        assert!(text.iter().all(|r| r.end <= 0x40_0000), "{text:x?}");
        assert!(executable_segments(b"not an elf").is_empty());
    }
}
