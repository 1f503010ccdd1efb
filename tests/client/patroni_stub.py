#!/usr/bin/env python3
"""A real HTTP server standing in for Patroni's REST API in tests/client/cluster_patroni_test.cpp.

    patroni_stub.py DIR     prints the port it listens on (127.0.0.1), then serves:

  /file/NAME/cluster     200 with the bytes of DIR/NAME, read at each request (404 if missing)
  /status/CODE/cluster   that HTTP status, a short JSON body
  /redirect/cluster      302 to /file/good/cluster (a client must not follow it)
  /slow/cluster          the status line and headers, then nothing for 30 s
  /huge/cluster          200, 4 MiB without Content-Length (ends when the connection closes)
  /hugelen/cluster       200, Content-Length of 4 MiB, then the bytes

It serves canned bytes the test chose; it knows nothing of PostgreSQL. Every request
path is appended to DIR/requests.log. SIGTERM ends it.
"""
import http.server
import os
import socketserver
import sys
import time

DIR = sys.argv[1]
HUGE = 4 << 20


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def send(self, status, body, length=True, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in headers:
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(os.path.join(DIR, "requests.log"), "a") as log:
            log.write(self.path + "\n")
        parts = self.path.strip("/").split("/")
        try:
            if len(parts) == 3 and parts[0] == "file" and parts[2] == "cluster":
                try:
                    with open(os.path.join(DIR, os.path.basename(parts[1])), "rb") as f:
                        body = f.read()
                except FileNotFoundError:
                    return self.send(404, b'{"error": "no such file"}')
                return self.send(200, body)
            if len(parts) == 3 and parts[0] == "status" and parts[2] == "cluster":
                return self.send(int(parts[1]), b'{"error": "canned status"}')
            if parts == ["redirect", "cluster"]:
                return self.send(302, b"", headers=[("Location", "/file/good/cluster")])
            if parts == ["slow", "cluster"]:
                self.send_response(200)
                self.end_headers()
                self.wfile.flush()
                time.sleep(30)
                return
            if parts in (["huge", "cluster"], ["hugelen", "cluster"]):
                self.send_response(200)
                if parts[0] == "hugelen":
                    self.send_header("Content-Length", str(HUGE))
                self.end_headers()
                chunk = b" " * 65536
                for _ in range(HUGE // len(chunk)):
                    self.wfile.write(chunk)
                return
            self.send(404, b'{"error": "unknown path"}')
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a cap or a timeout): expected


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
