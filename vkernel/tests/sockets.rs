//! Unix domain socket pairs (socketpair: stream, datagram, seqpacket;
//! descriptor passing) checked against Linux by a C program, natively
//! first, then in the guest; and the host's Python using them the way
//! real programs do (asyncio's self-pipe and subprocess transport,
//! multiprocessing's pool over /dev/shm semaphores), compared with the
//! same script on the host.

mod common;

use common::{c_checks_pass_natively_and_in_the_guest, vkernel};
use std::process::Command;

#[test]
fn socket_pairs_behave_as_on_linux() {
    c_checks_pass_natively_and_in_the_guest("sockets");
}

const PYTHON: &str = "/usr/bin/python3";

const SCRIPT: &str = r#"
import asyncio, multiprocessing, socket, os
async def main():
    p = await asyncio.create_subprocess_exec("/bin/echo", "from a subprocess", stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate()
    r, w = await asyncio.open_connection(sock=a)
    w.write(b"through a stream pair\n")
    await w.drain()
    print(out.decode().strip(), (await asyncio.wait_for(r2.readline(), 5)).decode().strip())
    await asyncio.sleep(0.01)
a, b = socket.socketpair()
async def run():
    global r2
    r2, _ = await asyncio.open_connection(sock=b)
    await main()
asyncio.run(run())
with multiprocessing.Pool(2) as pool:
    print(sorted(pool.map(abs, [-3, -1, -2])))
x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
x.send(b"one"); x.send(b"two")
print(y.recv(10), y.recv(10))
"#;

#[test]
fn python_asyncio_and_multiprocessing_run_as_on_the_host() {
    if !std::path::Path::new(PYTHON).exists() {
        panic!("{PYTHON} is missing (ci/setup.sh installs python3)");
    }
    let host = Command::new(PYTHON).args(["-c", SCRIPT]).output().unwrap();
    assert!(
        host.status.success(),
        "{}",
        String::from_utf8_lossy(&host.stderr)
    );
    let r = vkernel(&["run", "--rootfs", "/", "--", PYTHON, "-c", SCRIPT]);
    r.expect_code(0);
    assert_eq!(
        r.stdout,
        String::from_utf8_lossy(&host.stdout),
        "{}",
        r.stderr
    );
}
