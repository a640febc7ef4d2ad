//! Unix domain socket pairs (socketpair: stream, datagram, seqpacket;
//! descriptor passing) and named sockets (bind, listen, connect, accept;
//! paths, abstract names, datagrams to names) checked against Linux by C
//! programs, natively first, then in the guest on both pmaps; and the
//! host's Python using them the way real programs do (asyncio's
//! self-pipe, subprocess transport and Unix servers, multiprocessing's
//! pool over /dev/shm semaphores and its Listener and Client), compared
//! with the same script on the host. TCP over loopback (tests/c/tcp.c on
//! both pmaps; Python's http.server with urllib, asyncio over IPv6 and a
//! dual-stack server; socat's TCP-LISTEN with fork) the same way.

mod common;

use common::{
    c_checks_pass_natively_and_in_the_guest, c_checks_pass_natively_and_in_the_guest_with,
    same_as_host,
};

#[test]
fn socket_pairs_behave_as_on_linux() {
    c_checks_pass_natively_and_in_the_guest("sockets");
}

#[test]
fn named_sockets_behave_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("unixnames", &[], &["--pmap", pmap]);
    }
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
    python_runs_as_on_the_host(SCRIPT);
}

/// The host's Python runs `script` natively and over the host's root in
/// the guest, with the same output.
fn python_runs_as_on_the_host(script: &str) {
    if !std::path::Path::new(PYTHON).exists() {
        panic!("{PYTHON} is missing (ci/setup.sh installs python3)");
    }
    same_as_host(&[PYTHON, "-c", script]);
}

const NAMED_SCRIPT: &str = r#"
import asyncio, os, socket, tempfile, multiprocessing
from multiprocessing.connection import Listener, Client
path = os.path.join(tempfile.mkdtemp(), "srv")
async def handle(r, w):
    w.write(b"echo " + await r.readline())
    await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_unix_server(handle, path=path)
    r, w = await asyncio.open_unix_connection(path)
    w.write(b"hello over a named socket\n")
    await w.drain()
    print((await r.readline()).decode().strip())
    w.close()
    srv.close()
    await srv.wait_closed()
asyncio.run(main())
os.unlink(path)
def child(addr):
    with Client(addr, family="AF_UNIX") as c:
        c.send(["from", "a child"])
with Listener(path, family="AF_UNIX") as l:
    p = multiprocessing.Process(target=child, args=(path,))
    p.start()
    with l.accept() as conn:
        print(conn.recv())
    p.join()
name = b"\0vk-py-%d" % os.getpid()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(name)
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.bind(b"\0vk-py-client-%d" % os.getpid())
c.sendto(b"datagram", name)
data, addr = s.recvfrom(100)
print(data, addr.startswith(b"\0vk-py-client-"), s.getsockname() == name)
"#;

#[test]
fn python_unix_servers_and_clients_run_as_on_the_host() {
    python_runs_as_on_the_host(NAMED_SCRIPT);
}

/// socat's Unix listener (forking a child per connection, each running
/// `tr`) and its datagram receiver, driven by socat clients in a bash
/// script: the same output as on the host.
const SOCAT_SCRIPT: &str = r#"
d=$(mktemp -d)
socat UNIX-LISTEN:$d/s.sock,fork EXEC:"tr a-z A-Z" & l=$!
while [ ! -S $d/s.sock ]; do sleep 0.01; done
for i in 1 2 3; do echo "hello $i" | socat - UNIX-CONNECT:$d/s.sock; done
socat -u UNIX-RECVFROM:$d/d.sock - > $d/out & r=$!
while [ ! -S $d/d.sock ]; do sleep 0.01; done
echo datagram | socat -u - UNIX-SENDTO:$d/d.sock
wait $r
cat $d/out
kill $l
rm -rf $d
"#;

#[test]
fn socat_serves_unix_streams_and_datagrams_as_on_the_host() {
    let socat = "/usr/bin/socat";
    if !std::path::Path::new(socat).exists() {
        panic!("{socat} is missing (ci/setup.sh installs socat)");
    }
    let out = same_as_host(&["/bin/bash", "-c", SOCAT_SCRIPT]);
    assert_eq!(out, "HELLO 1\nHELLO 2\nHELLO 3\ndatagram\n");
}

#[test]
fn tcp_over_loopback_behaves_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("tcp", &[], &["--pmap", pmap]);
    }
}

/// An HTTP server thread and urllib (by 127.0.0.1 and by localhost), an
/// asyncio server and client over ::1, and IPv4 reaching a dual-stack
/// IPv6 listener.
const TCP_SCRIPT: &str = r#"
import http.server, threading, urllib.request, socket, asyncio
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
port = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
for host, p in [("127.0.0.1", "/a"), ("127.0.0.1", "/b"), ("localhost", "/c")]:
    with urllib.request.urlopen(f"http://{host}:{port}{p}") as r:
        print(r.status, r.read().decode())
srv.shutdown()
async def main():
    async def echo(r, w):
        d = await r.readline()
        w.write(d.upper())
        await w.drain()
        w.close()
    s = await asyncio.start_server(echo, "::1", 0)
    r, w = await asyncio.open_connection("::1", s.sockets[0].getsockname()[1])
    w.write(b"asyncio over ipv6\n")
    await w.drain()
    print((await r.readline()).decode().strip())
    w.close()
    s.close()
    await s.wait_closed()
asyncio.run(main())
a = socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True)
c = socket.create_connection(("127.0.0.1", a.getsockname()[1]))
k, addr = a.accept()
print("dualstack peer", addr[0])
"#;

#[test]
fn python_http_and_asyncio_over_tcp_run_as_on_the_host() {
    let out = same_as_host(&[PYTHON, "-c", TCP_SCRIPT]);
    assert_eq!(
        out,
        "200 hello /a\n200 hello /b\n200 hello /c\nASYNCIO OVER IPV6\ndualstack peer ::ffff:127.0.0.1\n"
    );
}

/// socat serving TCP with a process per connection, reached over IPv4
/// and over a v4-mapped IPv6 address.
const SOCAT_TCP_SCRIPT: &str = r#"
socat TCP-LISTEN:41234,bind=127.0.0.1,reuseaddr,fork EXEC:'tr a-z A-Z' & srv=$!
for i in $(seq 50); do socat -u /dev/null TCP:127.0.0.1:41234 2>/dev/null && break; sleep 0.1; done
echo "hello 1" | socat - TCP:127.0.0.1:41234
echo "hello 2" | socat - TCP6:[::ffff:127.0.0.1]:41234
kill $srv; wait $srv 2>/dev/null
echo done
"#;

#[test]
fn socat_serves_tcp_as_on_the_host() {
    let out = same_as_host(&["/bin/bash", "-c", SOCAT_TCP_SCRIPT]);
    assert_eq!(out, "HELLO 1\nHELLO 2\ndone\n");
}

/// `python3 -m http.server` serving files to curl and wget.
const CURL_SCRIPT: &str = r#"
mkdir -p /tmp/vk-www && echo "served file" > /tmp/vk-www/index.txt
cd /tmp/vk-www && python3 -m http.server 48080 --bind 127.0.0.1 >/dev/null 2>&1 & srv=$!
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:48080/ && break; sleep 0.1; done
curl -s http://127.0.0.1:48080/index.txt
curl -s -o /dev/null -w '%{http_code}\n' http://localhost:48080/missing
wget -q -O - http://127.0.0.1:48080/index.txt
kill $srv; wait $srv 2>/dev/null
rm -rf /tmp/vk-www
echo done
"#;

#[test]
fn curl_and_wget_fetch_from_python_http_server_as_on_the_host() {
    for tool in ["/usr/bin/curl", "/usr/bin/wget"] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing (ci/setup.sh installs curl and wget)"
        );
    }
    let out = same_as_host(&["/bin/bash", "-c", CURL_SCRIPT]);
    assert_eq!(out, "served file\n404\nserved file\ndone\n");
}

#[test]
fn udp_over_loopback_behaves_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("udp", &[], &["--pmap", pmap]);
    }
}

/// A socketserver UDP echo server in a thread, an asyncio datagram
/// endpoint over ::1, and a connected socket whose port nobody holds.
const UDP_SCRIPT: &str = r#"
import asyncio, socket, socketserver, threading
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data.upper(), self.client_address)
srv = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=srv.serve_forever, daemon=True).start()
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for word in [b"one", b"two"]:
    c.sendto(word, srv.server_address)
    data, addr = c.recvfrom(100)
    print(data.decode(), addr == srv.server_address)
srv.shutdown()
async def main():
    loop = asyncio.get_running_loop()
    got = loop.create_future()
    class P(asyncio.DatagramProtocol):
        def connection_made(self, t): self.t = t
        def datagram_received(self, data, addr):
            if data == b"ping": self.t.sendto(b"pong", addr)
            else: got.set_result(data)
    server, _ = await loop.create_datagram_endpoint(P, local_addr=("::1", 0))
    port = server.get_extra_info("sockname")[1]
    client, _ = await loop.create_datagram_endpoint(P, remote_addr=("::1", port))
    client.sendto(b"ping")
    print("asyncio", (await got).decode())
    server.close(); client.close()
asyncio.run(main())
gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
gone.bind(("127.0.0.1", 0))
port = gone.getsockname()[1]
gone.close()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.send(b"x")
try:
    s.send(b"x")
except ConnectionRefusedError as e:
    print("refused", e.errno)
"#;

#[test]
fn python_udp_servers_and_clients_run_as_on_the_host() {
    let out = same_as_host(&[PYTHON, "-c", UDP_SCRIPT]);
    assert_eq!(out, "ONE True\nTWO True\nasyncio pong\nrefused 111\n");
}

/// socat's UDP receiver, fed by socat clients over IPv4 and IPv6.
const SOCAT_UDP_SCRIPT: &str = r#"
socat -u UDP6-RECV:41235 - > /tmp/vk-udp.out & srv=$!
sleep 0.3
echo "over ipv4" | socat -u - UDP4-SENDTO:127.0.0.1:41235
echo "over ipv6" | socat -u - UDP6-SENDTO:[::1]:41235
sleep 0.3
kill $srv; wait $srv 2>/dev/null
sort /tmp/vk-udp.out; rm -f /tmp/vk-udp.out
"#;

#[test]
fn socat_receives_udp_as_on_the_host() {
    let out = same_as_host(&["/bin/bash", "-c", SOCAT_UDP_SCRIPT]);
    assert_eq!(out, "over ipv4\nover ipv6\n");
}
