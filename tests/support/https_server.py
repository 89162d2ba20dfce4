#!/usr/bin/env python3
"""A small HTTPS file server for the sync tests: serves DIR with an ETag
(the content's SHA-256) and Last-Modified, answers If-None-Match and
If-Modified-Since with 304, and logs one line per request
("GET /path 200|304 conditional=yes|no") to DIR/../requests.log.
usage: https_server.py DIR CERT KEY   (prints "PORT n" once it listens)"""
import email.utils
import hashlib
import http.server
import os
import ssl
import sys

root, cert, key = sys.argv[1:4]
log_path = os.path.join(os.path.dirname(os.path.abspath(root)), "requests.log")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = os.path.join(root, self.path.lstrip("/").split("?")[0])
        conditional = bool(self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since"))
        try:
            with open(path, "rb") as f:
                body = f.read()
            mtime = os.stat(path).st_mtime
        except OSError:
            self.answer(404, b"not found\n", {}, conditional)
            return
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        modified = email.utils.formatdate(mtime, usegmt=True)
        if self.headers.get("If-None-Match") == etag:
            self.answer(304, b"", {"ETag": etag, "Last-Modified": modified}, conditional)
            return
        self.answer(200, body, {"ETag": etag, "Last-Modified": modified}, conditional)

    def answer(self, status, body, headers, conditional):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)
        with open(log_path, "a") as log:
            log.write("GET %s %d conditional=%s\n" % (self.path, status, "yes" if conditional else "no"))

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("PORT %d" % server.server_address[1], flush=True)
server.serve_forever()
