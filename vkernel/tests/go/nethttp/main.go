// An HTTP server and client over TCP on 127.0.0.1 (net/http: the
// netpoller's non-blocking connect, accept4, epoll) and an echo server
// over ::1 whose io.Copy between sockets goes through splice.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "go says %s", r.URL.Path)
	}))
	for _, p := range []string{"/x", "/y"} {
		resp, err := http.Get("http://" + ln.Addr().String() + p)
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(b))
	}
	l6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		panic(err)
	}
	go func() { c, _ := l6.Accept(); io.Copy(c, c); c.Close() }()
	c, err := net.Dial("tcp", l6.Addr().String())
	if err != nil {
		panic(err)
	}
	c.Write([]byte("echo6"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
}
